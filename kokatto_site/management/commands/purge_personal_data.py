"""Purge the personal data past its retention periods now, as the daily schedule does."""

from django.core.management.base import BaseCommand

from kokatto_site.retention import personal_data_purge


class Command(BaseCommand):
    help = (
        "Purge finished notifications' personal data, old batch files and old gateway and "
        "sign-in logs past their retention periods (README: Personal data (UU PDP))."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would be purged."
        )

    def handle(self, *args, dry_run: bool, **options):
        counts = personal_data_purge(dry_run=dry_run)
        verb = "Would purge" if dry_run else "Purged"
        for kind, count in counts.items():
            self.stdout.write(f"{verb} {count} {kind}")
