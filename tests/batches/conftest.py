"""Fixtures for batch tests: a client home on local disk, and batch files made here."""

from dataclasses import dataclass
from pathlib import Path

import py7zr
import pytest
from django_q.brokers.orm import ORM
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from batches.file_storage import batch_storage, home_path
from batches.inbox import batch_receive
from batches.models import Batch, RejectedLine
from tests.factories import BatchFactory

PASSWORD = "s3cret-batch-pass"


@pytest.fixture
def batch_home(settings, tmp_path):
    """STORAGES["batches"] on a fresh local folder; returns its root."""
    root = tmp_path / "homes"
    settings.STORAGES = {
        **settings.STORAGES,
        "batches": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    settings.BATCH_WORK_DIR = str(tmp_path / "work")
    return root


@pytest.fixture
def batch_client(client_8002, app_8002):
    client_8002.set_batch_password(PASSWORD)
    client_8002.save()
    return client_8002


def line(reference, **overrides) -> str:
    tokens = {
        "clientId": "8002",
        "appType": "ABC",
        "clientNotifRefId": reference,
        "customerName": "John Doe",
        "balance": "1230000",
        "dueDate": "09-09-2035",
        "msisdn": "081234567890",
        **overrides,
    }
    # Each token quoted, a quote in it doubled.
    return ", ".join(
        '"' + f"{key}={value}".replace('"', '""') + '"'
        for key, value in tokens.items()
        if value is not None
    )


def seven_zip(path: Path, csv_text: str, *, password=PASSWORD, member="reminders.csv") -> Path:
    with py7zr.SevenZipFile(path, "w", password=password, header_encryption=True) as archive:
        archive.writestr(csv_text.encode(), member)
    return path


def upload(client, name: str, content: bytes) -> str:
    """Put a file into the client's inbox, as the client's upload would."""
    from django.core.files.base import ContentFile

    return batch_storage().save(home_path(client, "inbox", name), ContentFile(content))


def queued(broker) -> list[tuple[str, tuple]]:
    """(func, args) of every task waiting in the broker, oldest first."""
    if isinstance(broker, ORM):
        payloads = OrmQ.objects.filter(key=broker.list_key).order_by("pk")
        payloads = payloads.values_list("payload", flat=True)
    else:
        payloads = broker.connection.lrange(broker.list_key, 0, -1)
    tasks = [SignedPackage.loads(payload) for payload in payloads]
    return [(task["func"], tuple(task["args"])) for task in tasks]


def receive(client, tmp_path: Path, name: str, text: str):
    """Upload `text` as the 7z file `name` to the client's inbox; returns its batch, unqueued."""
    upload(client, name, seven_zip(tmp_path / name, text).read_bytes())
    return batch_receive(client=client, name=name, queue=False)


@pytest.fixture
def many_rejections(batch_client):
    """A finished batch of 120 rejected lines: line n is REF-n, odd lines VALIDATION_ERROR,
    even ones DUPLICATE_REFERENCE, its message "balance: bad value n"."""
    batch = BatchFactory(client=batch_client, status="DONE", lines_read=120, lines_rejected=120)
    RejectedLine.objects.bulk_create(
        RejectedLine(
            batch=batch,
            line=n,
            reference=f"REF-{n}",
            code="VALIDATION_ERROR" if n % 2 else "DUPLICATE_REFERENCE",
            message=f"balance: bad value {n}",
        )
        for n in range(1, 121)
    )
    return batch


@dataclass
class DailyUploads:
    """Monday's daily.7z, received as a batch (unqueued), and Tuesday's, not uploaded yet."""

    batch: Batch
    monday: bytes
    tuesday: bytes
    in_inbox: Path

    def upload_tuesday(self, _batch=None) -> None:
        """The client uploads Tuesday's file under the same name (a run's progress callback)."""
        self.in_inbox.write_bytes(self.tuesday)


@pytest.fixture
def daily_uploads(batch_home, batch_client, tmp_path) -> DailyUploads:
    monday = seven_zip(tmp_path / "monday.7z", line("MONDAY") + "\n").read_bytes()
    tuesday = seven_zip(tmp_path / "tuesday.7z", line("TUESDAY") + "\n").read_bytes()
    upload(batch_client, "daily.7z", monday)
    batch = batch_receive(client=batch_client, name="daily.7z", queue=False)
    in_inbox = batch_home / "8002" / "inbox" / "daily.7z"
    return DailyUploads(batch, monday, tuesday, in_inbox)
