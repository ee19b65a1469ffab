from django.core.management.base import BaseCommand, CommandError

from clients.onboarding import OnboardingError, client_create


class Command(BaseCommand):
    help = "Create a client (or update its name). Idempotent: safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("client_id", help="The pre-agreed clientId, e.g. 8002.")
        parser.add_argument("--name", required=True, help='e.g. "PT Example"')

    def handle(self, *args, client_id, name, **options):
        try:
            client, created = client_create(client_id=client_id, name=name)
        except OnboardingError as exc:
            raise CommandError(str(exc)) from None
        verb = "Created" if created else "Already present"
        self.stdout.write(f"{verb}: client {client.client_id} ({client.name})")
