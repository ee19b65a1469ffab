from django.core.management.base import BaseCommand, CommandError

from batches.batch_encryption import BatchEncryptionError, batch_encryption_set
from clients.onboarding import OnboardingError, client_get

CHOICES = ("openpgp", "7z", "none")


class Command(BaseCommand):
    help = "Choose how a client's batch files are encrypted: openpgp, 7z or none."

    def add_arguments(self, parser):
        parser.add_argument("client_id")
        parser.add_argument("method", choices=CHOICES)
        signature = parser.add_mutually_exclusive_group()
        signature.add_argument(
            "--require-signature",
            action="store_true",
            default=None,
            help="openpgp only: refuse files not signed by the client's key.",
        )
        signature.add_argument(
            "--no-require-signature",
            action="store_false",
            dest="require_signature",
            help="openpgp only: accept unsigned files (signed ones must still be good).",
        )

    def handle(self, *args, client_id, method, require_signature, **options):
        """Without either flag, an openpgp client keeps its signature requirement."""
        if require_signature is False and method != "openpgp":
            raise CommandError("--no-require-signature applies to openpgp batch files only.")
        try:
            client = client_get(client_id=client_id)
            required = batch_encryption_set(client, method, require_signature=require_signature)
        except (OnboardingError, BatchEncryptionError) as exc:
            raise CommandError(str(exc)) from None
        signed = ""
        if method == "openpgp":
            signed = ", signature required" if required else ", signature not required"
        self.stdout.write(f"Client {client_id}'s batch files: {method}{signed}.")
