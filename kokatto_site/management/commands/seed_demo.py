from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kokatto_site.demo import (
    DEMO_BATCH_PASSWORD,
    DEMO_GATEWAY_PASSWORD,
    DEMO_GATEWAY_USER,
    demo_seed,
)
from kokatto_site.demo_activity import demo_activity_seed


class Command(BaseCommand):
    help = (
        "Load the demo clients, application, templates and one user per role, and send "
        "a few dozen demo notifications and one batch file through the pipeline. "
        "Idempotent. Refuses to run without DEBUG unless --force: the demo "
        "logins and the demo secret key are public."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")

    def handle(self, *args, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates public demo logins; run it with DEBUG on or --force."
            )
        summary = demo_seed()
        activity = demo_activity_seed()
        self.stdout.write("Demo data is loaded. Demo logins (username / password):")
        for username, password, purpose in summary.users:
            self.stdout.write(f"  {username:<10} / {password:<24} {purpose}")
        if summary.secret_key:
            self.stdout.write(
                f"Client 8002 API secret key (demo only, {summary.secret_key_note}): "
                f"{summary.secret_key}"
            )
        else:
            self.stdout.write(f"Client 8002 demo secret key not issued: {summary.secret_key_note}")
        self.stdout.write(
            f"Client 8002 batch password: {DEMO_BATCH_PASSWORD}; its SFTP login on "
            f"127.0.0.1:{settings.SFTP_PORT}: {DEMO_GATEWAY_USER} / {DEMO_GATEWAY_PASSWORD}, "
            f"or the key {summary.gateway_key_path}"
        )
        if activity.already_there:
            self.stdout.write("Demo notifications and batch: already there.")
        else:
            batch = activity.batch
            self.stdout.write(
                f"Demo notifications sent through the console backends: {activity.notifications}; "
                f"demo batch {batch.file_name}: {batch.status}, {batch.lines_accepted} lines "
                f"accepted, {batch.lines_rejected} rejected."
            )
