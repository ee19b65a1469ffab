"""A batch line whose value does not fit its column is rejected on its own; the batch goes on."""

import pytest
from django.db import connection

from batches.line_checking import UNSTORABLE_MESSAGE
from batches.models import RejectedLine
from notifications.models import Delivery, Notification
from tests.api.test_column_limits import LONG_EMAIL
from tests.batches.conftest import line, seven_zip
from tests.batches.test_ingest import ingest, result_rows
from tests.factories import ApplicationFactory, ClientFactory

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite does not enforce a column's length"
)


def test_a_line_with_an_email_longer_than_its_column_is_rejected_and_the_rest_stored(
    batch_home, batch_client, tmp_path
):
    lines = [line("R-1"), line("R-LONG", email=LONG_EMAIL), line("R-3", email="a@example.com")]
    archive = seven_zip(tmp_path / "long.7z", "\n".join(lines) + "\n")

    batch = ingest(batch_client, "long.7z", archive.read_bytes())

    assert (batch.status, batch.lines_accepted, batch.lines_rejected) == ("DONE", 2, 1)
    assert [row[:4] for row in result_rows(batch)[1:]] == [
        ["1", "R-1", "ACCEPTED", ""],
        ["2", "R-LONG", "REJECTED", "VALIDATION_ERROR"],
        ["3", "R-3", "ACCEPTED", ""],
    ]
    assert "email: At most 254 characters" in result_rows(batch)[2][4]


@pytest.fixture
def narrow_recipient_column():
    """The database refuses a value the checks let through: Delivery.recipient made
    narrower than the model says (in the test's transaction, undone with it)."""
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(Delivery._meta.db_table)
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN recipient TYPE varchar(20)")


@on_postgresql
def test_a_line_the_database_refuses_is_rejected_alone_and_the_batch_finishes(
    batch_home, batch_client, tmp_path, settings, narrow_recipient_column, caplog
):
    settings.BATCH_CHUNK_LINES = 4
    other = ClientFactory(client_id="8003")
    ApplicationFactory(client=other, code="ABC")
    # Lines 3 and 6 hold addresses of 21 and 26 characters: valid, and too long for the column.
    emails = ["a@b.co", "", "twenty-one@chars1.com", "", "", "twenty-six-chars@mail1.com", "c@d.co"]
    lines = [line(f"R-{n}", email=email or None) for n, email in enumerate(emails, start=1)]
    archive = seven_zip(tmp_path / "refused.7z", "\n".join(lines) + "\n")

    batch = ingest(batch_client, "refused.7z", archive.read_bytes())

    assert (batch.status, batch.lines_read, batch.lines_accepted, batch.lines_rejected) == (
        "DONE",
        7,
        5,
        2,
    )
    rows = result_rows(batch)
    assert [row[:4] for row in rows[1:]] == [
        ["1", "R-1", "ACCEPTED", ""],
        ["2", "R-2", "ACCEPTED", ""],
        ["3", "R-3", "REJECTED", "UNSTORABLE_VALUE"],
        ["4", "R-4", "ACCEPTED", ""],
        ["5", "R-5", "ACCEPTED", ""],
        ["6", "R-6", "REJECTED", "UNSTORABLE_VALUE"],
        ["7", "R-7", "ACCEPTED", ""],
    ]
    # The database's words (its types, its columns) are for the operators' log only.
    assert rows[3][4] == rows[6][4] == UNSTORABLE_MESSAGE
    assert "value too long for type character varying(20)" in caplog.text
    assert sorted(
        Notification.objects.filter(batch=batch).values_list("batch_line", flat=True)
    ) == [
        1,
        2,
        4,
        5,
        7,
    ]
    assert not Notification.objects.filter(client=other).exists()
    assert RejectedLine.objects.filter(batch=batch, code="UNSTORABLE_VALUE").count() == 2
