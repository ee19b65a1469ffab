"""A reference the API takes while a batch chunk is being stored (PostgreSQL: two real sessions)."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from batches.inbox import batch_receive
from batches.ingest import batch_ingest
from batches.models import RejectedLine
from notifications.intake import notification_create
from notifications.models import Notification
from tests.batches.conftest import line, seven_zip, upload

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="two sessions at once need PostgreSQL"
    ),
]

FIELDS = {"customerName": "A", "balance": "1", "dueDate": "09-09-2035", "msisdn": "0812345678"}


def test_a_reference_the_api_takes_during_a_chunk_is_rejected_once_and_nothing_is_lost(
    batch_home, batch_client, tmp_path
):
    text = line("RACE") + "\n" + line("FREE") + "\n"
    upload(batch_client, "race.7z", seven_zip(tmp_path / "race.7z", text).read_bytes())
    batch = batch_receive(client=batch_client, name="race.7z", queue=False)
    api_has_inserted, api_may_commit = threading.Event(), threading.Event()

    def api_request_committed_late():
        try:
            with transaction.atomic():
                notification_create(
                    client=batch_client, application_code="ABC", reference="RACE", values=FIELDS
                )
                api_has_inserted.set()
                api_may_commit.wait(20)
        finally:
            connections.close_all()

    def commit_once_the_ingest_waits_for_it():
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not _a_session_waits_for_a_lock():
                time.sleep(0.05)
        finally:
            api_may_commit.set()
            connections.close_all()

    api = threading.Thread(target=api_request_committed_late)
    api.start()
    assert api_has_inserted.wait(20)
    watcher = threading.Thread(target=commit_once_the_ingest_waits_for_it)
    watcher.start()

    # The ingest does not see the API's uncommitted row, inserts RACE, waits on the
    # unique index, fails when the API commits, and stores the chunk again.
    status = batch_ingest(batch_id=batch.pk)
    api.join(20)
    watcher.join(20)

    assert status == "DONE"
    [api_notification] = Notification.objects.filter(reference="RACE")
    assert api_notification.source == "api"
    assert Notification.objects.get(reference="FREE").batch_id == batch.pk
    [rejected] = RejectedLine.objects.filter(batch=batch)
    assert (rejected.line, rejected.code) == (1, "DUPLICATE_REFERENCE")
    batch.refresh_from_db()
    assert (batch.lines_read, batch.lines_accepted, batch.lines_rejected) == (2, 1, 1)


def _a_session_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0
