import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from batches.gateway.accounts import gateway_account_create
from clients.models import Client


class Command(BaseCommand):
    help = "Create a file-transfer gateway account for a client; prints one line."

    def add_arguments(self, parser):
        parser.add_argument("client_id", help="The client's clientId.")
        parser.add_argument("username")
        parser.add_argument(
            "--password-stdin", action="store_true", help="Read the password from standard input."
        )
        parser.add_argument(
            "--public-key", metavar="FILE", help="An OpenSSH public key file (.pub) to authorise."
        )
        parser.add_argument(
            "--protocols", default="sftp", help="Comma-separated: sftp, ftps (default: sftp)."
        )

    def handle(self, *args, client_id, username, password_stdin, public_key, protocols, **options):
        client = Client.objects.filter(client_id=client_id).first()
        if client is None:
            raise CommandError(f"No client with clientId {client_id!r}.")
        password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
        if password_stdin and not password:
            raise CommandError("--password-stdin: standard input gave an empty password.")
        keys = [_read_key(public_key)] if public_key else []
        try:
            account = gateway_account_create(
                client=client,
                username=username,
                password=password,
                public_keys=keys,
                protocols=[p.strip() for p in protocols.split(",") if p.strip()],
            )
        except ValidationError as error:
            raise CommandError(" ".join(_messages(error))) from None
        fingerprints = ", ".join(key.fingerprint for key in account.keys.all())
        self.stdout.write(
            f"Gateway account {account.username} created for client {client.client_id} "
            f"({', '.join(account.protocols())}; password: {'yes' if password else 'no'}; "
            f"keys: {fingerprints or 'none'})"
        )


def _read_key(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"--public-key {path}: {error}") from None


def _messages(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [
            f"{field}: {message}" for field, msgs in error.message_dict.items() for message in msgs
        ]
    return error.messages
