import os
import time
from urllib.parse import urlencode

from django.core.management.base import BaseCommand, CommandError

from clients.signing import sign, string_to_sign


class Command(BaseCommand):
    help = (
        "Sign a /notif request the way a client's system must, and print a ready-to-run URL. "
        "Example: sign_request clientId=8002 operation=status clientNotifRefId=R-1 "
        "(the secret comes from --secret or the KOKATTO_SECRET environment variable)."
    )

    def add_arguments(self, parser):
        parser.add_argument("parameters", nargs="+", help="name=value pairs")
        parser.add_argument("--secret", default=os.environ.get("KOKATTO_SECRET", ""))
        parser.add_argument("--base-url", default="http://127.0.0.1:8000/notif")
        parser.add_argument(
            "--show-string", action="store_true", help="Also print the string that is signed."
        )

    def handle(self, *args, parameters, secret, base_url, show_string, **options):
        if not secret:
            raise CommandError("Give the client's secret key with --secret or KOKATTO_SECRET.")
        signed = {}
        for pair in parameters:
            name, separator, value = pair.partition("=")
            if not separator or not name:
                raise CommandError(f"{pair!r} is not name=value.")
            if name in signed:
                raise CommandError(f"{name!r} is given twice.")
            signed[name] = value
        signed.setdefault("timestamp", str(int(time.time())))
        if show_string:
            self.stderr.write(string_to_sign(signed))
        signed["signature"] = sign(signed, secret)
        self.stdout.write(f"{base_url}?{urlencode(signed)}")
