from django.core.management.base import BaseCommand

from batches.gateway.identity import gateway_identity


class Command(BaseCommand):
    help = "Print the SFTP host key's and the FTPS certificate's SHA-256 fingerprints."

    def handle(self, *args, **options):
        identity = gateway_identity()
        self.stdout.write(f"SFTP host key:    {identity.ssh_host_key} (ED25519)")
        self.stdout.write(f"FTPS certificate: SHA-256 {identity.certificate}")
        if identity.plain_ftp_allowed:
            self.stdout.write("Plain FTP is allowed (FTPS_ALLOW_PLAIN_FTP): passwords in clear.")
