"""Accepting one notification: what intake hands back is what it stored.

On PostgreSQL the notification and its deliveries are stored by one statement and
built in Python from what it returned, without reading them back; these tests read
them back and compare.
"""

from datetime import timedelta

import psycopg
import pytest
from django.db import DataError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.bulk_insert import insert_one_notification_postgresql
from notifications.intake import notification_create
from notifications.models import Delivery, DeliveryStatus, Notification, NotificationStatus
from tests.factories import demo_values


def _fields(row, names):
    return {name: getattr(row, name) for name in names}


def test_a_created_notification_is_what_the_database_holds(app_8002):
    result = notification_create(
        client=app_8002.client,
        application_code="ABC",
        reference="STORED-1",
        values=demo_values(email="budi@example.co.id"),
    )

    stored = Notification.objects.get(pk=result.notification.pk)
    names = [f.attname for f in Notification._meta.concrete_fields]
    assert result.created
    assert _fields(result.notification, names) == _fields(stored, names)
    assert stored.status == NotificationStatus.ACCEPTED
    assert result.notification.client == app_8002.client
    assert result.notification.application == app_8002


def test_its_deliveries_are_what_the_database_holds_one_per_medium(app_8002):
    result = notification_create(
        client=app_8002.client,
        application_code="ABC",
        reference="STORED-2",
        values=demo_values(email="budi@example.co.id"),
    )

    stored = {d.pk: d for d in Delivery.objects.filter(notification=result.notification)}
    names = [f.attname for f in Delivery._meta.concrete_fields]
    assert len(result.deliveries) == len(stored) == 2  # SMS and email
    for delivery in result.deliveries:
        assert _fields(delivery, names) == _fields(stored[delivery.pk], names)
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.notification is result.notification


def test_a_scheduled_notifications_deliveries_wait_for_its_send_time(app_8002):
    send_at = timezone.now().replace(microsecond=0) + timedelta(days=1)

    result = notification_create(
        client=app_8002.client,
        application_code="ABC",
        reference="STORED-3",
        values=demo_values(email="budi@example.co.id"),
        send_at=send_at.isoformat(),
    )

    assert result.notification.send_at == send_at
    assert {
        d.next_attempt_at for d in Delivery.objects.filter(notification_id=result.notification.pk)
    } == {send_at}


def test_a_taken_reference_stores_nothing_more(app_8002):
    first = notification_create(
        client=app_8002.client,
        application_code="ABC",
        reference="STORED-4",
        values=demo_values(email="budi@example.co.id"),
    )

    again = notification_create(
        client=app_8002.client,
        application_code="ABC",
        reference="STORED-4",
        values=demo_values(email="budi@example.co.id"),
    )

    assert not again.created
    assert again.notification.pk == first.notification.pk
    assert sorted(d.pk for d in again.deliveries) == sorted(d.pk for d in first.deliveries)
    assert Notification.objects.filter(reference="STORED-4").count() == 1
    assert Delivery.objects.filter(notification__reference="STORED-4").count() == 2


postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the one-statement insert of PostgreSQL"
)


def _create(app, reference):
    return notification_create(
        client=app.client,
        application_code="ABC",
        reference=reference,
        values=demo_values(email="budi@example.co.id"),
    )


def _prepared_inserts() -> list[str]:
    """The names of the connection's prepared statements that insert notifications."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement FROM pg_prepared_statements")
        rows = cursor.fetchall()
    return [
        name for name, statement in rows if 'INSERT INTO "notifications_notification"' in statement
    ]


@postgresql_only
def test_creating_again_and_again_prepares_the_statement_once_per_connection(app_8002):
    before = set(_prepared_inserts())  # another test's, of other parameter types

    for number in range(12):
        assert _create(app_8002, f"PREPARED-{number}").created

    after = set(_prepared_inserts())
    assert after and len(after - before) <= 1
    assert Notification.objects.filter(reference__startswith="PREPARED-").count() == 12
    # Only this statement is prepared: the connection itself still prepares nothing.
    assert connection.connection.prepare_threshold is None


@postgresql_only
def test_with_prepared_statements_turned_off_nothing_is_prepared(app_8002, settings):
    """DATABASE_PREPARED_STATEMENTS=false, for a pooler that does not keep them."""
    settings.DATABASE_PREPARED_STATEMENTS = False

    for number in range(12):
        assert _create(app_8002, f"UNPREPARED-{number}").created

    assert _prepared_inserts() == []


@postgresql_only
def test_with_connections_not_kept_nothing_is_prepared(app_8002, monkeypatch):
    """CONN_MAX_AGE 0: each request a new connection, where preparing only adds a round trip."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)

    for number in range(3):
        assert _create(app_8002, f"NOT-KEPT-{number}").created

    assert _prepared_inserts() == []


@postgresql_only
def test_the_prepared_statement_is_logged_as_written(app_8002):
    _create(app_8002, "LOGGED-0")  # prepared from here on

    with CaptureQueriesContext(connection) as queries:
        _create(app_8002, "LOGGED-1")

    [insert] = [q["sql"] for q in queries.captured_queries if "INSERT INTO" in (q["sql"] or "")]
    assert insert.lstrip().startswith("WITH n AS (")


@postgresql_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_create_after_a_migration_changed_a_returned_column_still_stores_it(app_8002):
    """A prepared statement cannot run once a column it returns changed type: the create
    closes the connection and runs it again, instead of failing until the connection ages."""
    assert _create(app_8002, "BEFORE-MIGRATION").created
    assert _prepared_inserts()
    alter = 'ALTER TABLE "notifications_delivery" ALTER COLUMN "medium" TYPE varchar({})'
    with psycopg.connect(_dsn(), autocommit=True) as other:
        other.execute(alter.format(32))
    try:
        after = _create(app_8002, "AFTER-MIGRATION")
    finally:
        with psycopg.connect(_dsn(), autocommit=True) as other:
            other.execute(alter.format(16))

    assert after.created
    assert {d.medium for d in after.deliveries} == {"sms", "email"}
    assert Delivery.objects.filter(notification__reference="AFTER-MIGRATION").count() == 2


@postgresql_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_create_after_the_server_forgot_the_prepared_statement_still_stores_it(app_8002):
    """DISCARD ALL, or a pooler handing the connection another server session."""
    assert _create(app_8002, "BEFORE-DISCARD").created
    assert _prepared_inserts()
    connection.connection.execute("DEALLOCATE ALL")  # behind psycopg's back

    after = _create(app_8002, "AFTER-DISCARD")

    assert after.created
    assert Delivery.objects.filter(notification__reference="AFTER-DISCARD").count() == 2


def _dsn() -> str:
    parameters = connection.get_connection_params()
    keys = ("host", "port", "user", "password", "dbname")
    return " ".join(f"{key}={parameters[key]}" for key in keys if parameters.get(key))


@postgresql_only
def test_a_value_longer_than_its_column_is_refused_never_cut(app_8002):
    now = timezone.now()
    columns = {
        "client_id": app_8002.client_id,
        "application_id": app_8002.pk,
        "reference": "R" * 101,  # the column holds 100
        "params": {},
        "source": "api",
        "send_at": None,
        "expires_at": None,
    }

    with pytest.raises(DataError, match="too long"):
        insert_one_notification_postgresql(
            notification=columns,
            recipients={"sms": "+6281234567890"},
            next_attempt_at=now,
            now=now,
        )
