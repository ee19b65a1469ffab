import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from batches.inbox import batch_receive
from batches.ingest import batch_ingest, copy_into_inbox
from clients.onboarding import OnboardingError, client_get

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Ingest a local batch file for a client now, as if it had been uploaded to its "
        "inbox: the original is archived and the result file written to its outbox."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--client", required=True, help="the clientId, e.g. 8002")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args, path: Path, client: str, quiet: bool, **options):
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            owner = client_get(client_id=client)
        except OnboardingError as exc:
            raise CommandError(str(exc)) from None
        name = copy_into_inbox(owner, path)
        batch = batch_receive(client=owner, name=name, size=path.stat().st_size, queue=False)
        status = batch_ingest(batch_id=batch.pk, progress=None if quiet else self.show_progress)
        if not quiet:
            sys.stderr.write("\n")
        batch.refresh_from_db()
        self.stdout.write(
            f"Batch {batch.pk} {status}: {batch.lines_read} lines read, "
            f"{batch.lines_accepted} accepted, {batch.lines_rejected} rejected."
        )
        if batch.failure_code:
            self.stdout.write(f"{batch.failure_code}: {batch.failure_message}")
        self.stdout.write(f"Result file: {batch.result_path}")
        if status == "FAILED":
            raise CommandError(f"Batch {batch.pk} failed ({batch.failure_code}).")

    def show_progress(self, batch) -> None:
        done = batch.bytes_done * BAR_WIDTH // max(batch.bytes_total, 1)
        percent = batch.bytes_done * 100 // max(batch.bytes_total, 1)
        sys.stderr.write(
            f"\r[{'#' * done}{' ' * (BAR_WIDTH - done)}] {percent:3d}%  "
            f"{batch.lines_read:,} lines, {batch.lines_rejected:,} rejected"
        )
        sys.stderr.flush()
