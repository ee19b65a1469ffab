from django.conf import settings
from django.core.management.base import BaseCommand

from batches.gateway.host_key import sftp_host_key_fingerprint
from batches.gateway.sftp import SftpGateway


class Command(BaseCommand):
    help = "Run the SFTP gateway: clients upload batch files to their /inbox, results in /outbox."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=settings.SFTP_BIND_ADDRESS)
        parser.add_argument("--port", type=int, default=settings.SFTP_PORT)

    def handle(self, *args, bind, port, **options):
        gateway = SftpGateway(bind, port)
        host, bound_port = gateway.address
        self.stdout.write(
            f"SFTP gateway on {host}:{bound_port}, "
            f"host key {sftp_host_key_fingerprint()} (ED25519)",
        )
        self.stdout.flush()
        try:
            gateway.serve_forever()
        except KeyboardInterrupt:
            gateway.shutdown()
