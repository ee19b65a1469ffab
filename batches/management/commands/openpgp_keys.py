from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from batches.openpgp_keys import OpenPGPKeyError, client_key_set, platform_key_ensure
from clients.onboarding import OnboardingError, client_get


class Command(BaseCommand):
    help = (
        "A client's OpenPGP keys: --export prints the platform's public key for the client "
        "(generating the pair when there is none); --import-client-key FILE sets the client's "
        "own public key and prints its fingerprint."
    )

    def add_arguments(self, parser):
        parser.add_argument("client_id")
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--export", action="store_true")
        action.add_argument("--import-client-key", metavar="FILE")

    def handle(self, *args, client_id, export, import_client_key, **options):
        try:
            client = client_get(client_id=client_id)
        except OnboardingError as exc:
            raise CommandError(str(exc)) from None
        if export:
            self.stdout.write(platform_key_ensure(client).public_key, ending="")
            return
        try:
            # Read one byte past the limit, so a huge file is refused without reading it all.
            with Path(import_client_key).open(encoding="utf-8") as key_file:
                armoured = key_file.read(settings.OPENPGP_MAX_KEY_BYTES + 1)
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not an ASCII-armoured key"
            raise CommandError(f"Cannot read {import_client_key}: {reason}.") from None
        try:
            key = client_key_set(client, armoured)
        except OpenPGPKeyError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Client {client_id}'s OpenPGP key set: {key.fingerprint}")
