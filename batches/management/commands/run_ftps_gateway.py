from django.conf import settings
from django.core.management.base import BaseCommand

from batches.gateway.ftps import FtpsGateway
from batches.gateway.identity import gateway_identity


class Command(BaseCommand):
    help = "Run the FTPS gateway: clients upload batch files to their /inbox, results in /outbox."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=settings.FTPS_BIND_ADDRESS)
        parser.add_argument("--port", type=int, default=settings.FTPS_PORT)

    def handle(self, *args, bind, port, **options):
        gateway = FtpsGateway(bind, port)
        host, bound_port = gateway.address
        self.stdout.write(
            f"FTPS gateway on {host}:{bound_port}, "
            f"certificate SHA-256 {gateway_identity().certificate}"
        )
        if gateway.plain_allowed:
            self.stderr.write("Plain FTP is allowed (FTPS_ALLOW_PLAIN_FTP): passwords in clear.")
        self.stdout.flush()
        try:
            gateway.serve_forever()
        except KeyboardInterrupt:
            gateway.shutdown()
