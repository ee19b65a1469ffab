from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from batches.openpgp_keys import (
    OpenPGPKeyError,
    client_key_set,
    platform_key_by_fingerprint,
    platform_key_ensure,
    platform_key_retire,
    platform_key_rotate,
)
from clients.onboarding import OnboardingError, client_get


class Command(BaseCommand):
    help = (
        "A client's OpenPGP keys: --export prints the platform's public key for the client "
        "(generating the pair when there is none); --rotate generates a new current key pair "
        "and prints its fingerprint (with --export, its public key; the older keys still "
        "decrypt until retired); --retire FINGERPRINT retires an older key; "
        "--import-client-key FILE sets the client's own public key and prints its fingerprint."
    )

    def add_arguments(self, parser):
        parser.add_argument("client_id")
        parser.add_argument("--export", action="store_true")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--rotate", action="store_true")
        action.add_argument("--retire", metavar="FINGERPRINT")
        action.add_argument("--import-client-key", metavar="FILE")

    def handle(self, *args, client_id, export, rotate, retire, import_client_key, **options):
        if not (export or rotate or retire or import_client_key):
            raise CommandError(
                "Say what to do: --export, --rotate, --retire FINGERPRINT "
                "or --import-client-key FILE."
            )
        if export and (retire or import_client_key):
            raise CommandError("--export goes alone or with --rotate.")
        try:
            client = client_get(client_id=client_id)
        except OnboardingError as exc:
            raise CommandError(str(exc)) from None
        try:
            if rotate:
                self._rotate(client, export=export)
            elif retire:
                key = platform_key_retire(platform_key_by_fingerprint(client, retire))
                self.stdout.write(f"Client {client_id}'s OpenPGP key retired: {key.fingerprint}")
            elif import_client_key:
                self._import_client_key(client, import_client_key)
            else:
                self.stdout.write(platform_key_ensure(client).public_key, ending="")
        except OpenPGPKeyError as exc:
            raise CommandError(str(exc)) from None

    def _rotate(self, client, *, export: bool) -> None:
        key = platform_key_rotate(client)
        if export:
            self.stdout.write(key.public_key, ending="")
        else:
            self.stdout.write(f"Client {client.client_id}'s new OpenPGP key: {key.fingerprint}")

    def _import_client_key(self, client, file_name: str) -> None:
        try:
            # Read one byte past the limit, so a huge file is refused without reading it all.
            with Path(file_name).open(encoding="utf-8") as key_file:
                armoured = key_file.read(settings.OPENPGP_MAX_KEY_BYTES + 1)
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not an ASCII-armoured key"
            raise CommandError(f"Cannot read {file_name}: {reason}.") from None
        key = client_key_set(client, armoured)
        self.stdout.write(f"Client {client.client_id}'s OpenPGP key set: {key.fingerprint}")
