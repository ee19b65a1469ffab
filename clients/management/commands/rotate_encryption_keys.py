from django.core.management.base import BaseCommand, CommandError

from clients.key_rotation import ColumnCounts, encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret (API secret keys, batch passwords, any encrypted "
        "column) with the first FIELD_ENCRYPTION_KEY, so the others can be dropped. "
        "Idempotent and resumable: run it again until it reports nothing re-encrypted."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Rows re-encrypted per transaction (default 500).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count; change nothing.")

    def handle(self, *args, batch_size, dry_run, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        results = encryption_keys_rotate(batch_size=batch_size, dry_run=dry_run)
        for counts in results:
            self.stdout.write(_summary(counts, dry_run))
        unreadable = sum(len(counts.unreadable) for counts in results)
        if unreadable:
            raise CommandError(
                f"{unreadable} stored value(s) can be opened by no key in FIELD_ENCRYPTION_KEY. "
                "Add the key they were encrypted with (last) and run this again, or replace "
                "those secrets (a new secret key, a new batch password)."
            )


def _summary(counts: ColumnCounts, dry_run: bool) -> str:
    done = "to re-encrypt" if dry_run else "re-encrypted"
    line = (
        f"{counts.label}: {counts.reencrypted} {done}, {counts.current} already current, "
        f"{len(counts.unreadable)} unreadable"
    )
    if counts.changed_meanwhile:
        line += f", {counts.changed_meanwhile} changed meanwhile (run again)"
    for value in counts.unreadable:
        line += f"\n  unreadable: row {value.pk} of client {value.client_id}"
    return line
