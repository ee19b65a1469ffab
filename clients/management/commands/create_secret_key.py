from django.core.management.base import BaseCommand, CommandError

from clients.keys import SecretKeyError, secret_key_create
from clients.onboarding import OnboardingError, client_get


class Command(BaseCommand):
    help = (
        "Issue a new API secret key for a client and print it, alone on its line, once. "
        "A client has at most two active keys."
    )

    def add_arguments(self, parser):
        parser.add_argument("client_id")

    def handle(self, *args, client_id, **options):
        try:
            key, secret = secret_key_create(client=client_get(client_id=client_id))
        except (OnboardingError, SecretKeyError) as exc:
            raise CommandError(str(exc)) from None
        # Only the secret goes to stdout so that a script can capture it as is.
        self.stderr.write(
            f"Issued key {key.fingerprint} for client {client_id}; it will not be shown again."
        )
        self.stdout.write(secret)
