import sys

from django.core.management.base import BaseCommand, CommandError

from clients.onboarding import OnboardingError, client_get, client_set_batch_password


class Command(BaseCommand):
    help = (
        "Set a client's batch archive password, read from standard input "
        "(so it stays out of the shell history and the process list)."
    )

    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("client_id")

    def handle(self, *args, client_id, **options):
        # One line; the line break a pipe or `echo` adds is not part of it.
        stdin = options.get("stdin") or sys.stdin
        password = stdin.readline().rstrip("\r\n")
        try:
            client_set_batch_password(client=client_get(client_id=client_id), password=password)
        except OnboardingError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Batch password set for client {client_id}.")
