from django.core.management.base import BaseCommand, CommandError

from batches.batch_encryption import BatchEncryptionError, batch_encryption_set
from clients.onboarding import OnboardingError, client_get

CHOICES = ("openpgp", "7z", "none")


class Command(BaseCommand):
    help = "Choose how a client's batch files are encrypted: openpgp, 7z or none."

    def add_arguments(self, parser):
        parser.add_argument("client_id")
        parser.add_argument("method", choices=CHOICES)
        parser.add_argument(
            "--require-signature",
            action="store_true",
            help="openpgp only: refuse files not signed by the client's key.",
        )

    def handle(self, *args, client_id, method, require_signature, **options):
        try:
            client = client_get(client_id=client_id)
            batch_encryption_set(client, method, require_signature=require_signature)
        except (OnboardingError, BatchEncryptionError) as exc:
            raise CommandError(str(exc)) from None
        signed = ", signature required" if require_signature else ""
        self.stdout.write(f"Client {client_id}'s batch files: {method}{signed}.")
