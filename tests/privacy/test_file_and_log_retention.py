"""Batch originals and result files, gateway events and sign-in logs are deleted after
their own periods; younger ones, and an unfinished batch's files, are kept."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone

from batches.file_storage import batch_storage, home_path
from batches.gateway.audit import gateway_event_record
from batches.models import Batch, GatewayEvent, GatewayLoginFailure, RejectedLine
from batches.retention import batch_files_purge, gateway_logs_purge
from kokatto_site.retention import personal_data_purge, sign_in_logs_purge
from notifications.models import AccessKind, PersonalDataAccess, RetentionRun
from tests.factories import BatchFactory


@pytest.fixture(autouse=True)
def periods(settings):
    settings.BATCH_ARCHIVE_RETENTION_DAYS = 90
    settings.BATCH_RESULT_RETENTION_DAYS = 30


def batch_with_files(client, name: str, *, finished_days_ago: int, status: str = "DONE") -> Batch:
    storage = batch_storage()
    archived = storage.save(home_path(client, "archive", f"{name}.7z"), ContentFile(b"original"))
    result = storage.save(home_path(client, "outbox", f"{name}.result.csv"), ContentFile(b"r"))
    return BatchFactory(
        client=client,
        file_name=f"{name}.7z",
        status=status,
        archived_path=archived,
        result_path=result,
        finished_at=timezone.now() - timedelta(days=finished_days_ago),
    )


def files_of(batch: Batch) -> tuple[bool, bool]:
    batch.refresh_from_db()
    storage = batch_storage()
    return (
        bool(batch.archived_path) and storage.exists(batch.archived_path),
        bool(batch.result_path) and storage.exists(batch.result_path),
    )


def test_files_past_their_periods_are_deleted_and_younger_ones_kept(batch_home, client_8002):
    storage = batch_storage()
    young = batch_with_files(client_8002, "young", finished_days_ago=10)
    middle = batch_with_files(client_8002, "middle", finished_days_ago=60)
    old = batch_with_files(client_8002, "old", finished_days_ago=100)
    old_paths = (old.archived_path, old.result_path)

    counts = batch_files_purge(now=timezone.now())

    assert counts == {"batch originals": 1, "batch result files": 2, "rejected line messages": 0}
    assert files_of(young) == (True, True)
    assert files_of(middle) == (True, False)  # its result is past 30 days, its original not 90
    assert files_of(old) == (False, False)
    assert not any(storage.exists(path) for path in old_paths)
    assert (old.archived_path, old.result_path) == ("", "")
    assert set(batch_files_purge(now=timezone.now()).values()) == {0}


def test_rejected_lines_lose_the_values_they_quote_with_the_result_file(batch_home, client_8002):
    old = batch_with_files(client_8002, "old", finished_days_ago=40)
    young = batch_with_files(client_8002, "young", finished_days_ago=10)
    quoting = "msisdn: Expected a phone number such as +6281234567890; got '0812-BUDI'."
    for batch in (old, young):
        Batch.objects.filter(pk=batch.pk).update(lines_rejected=1)
        RejectedLine.objects.create(
            batch=batch, line=7, reference="REF-7", code="VALIDATION_ERROR", message=quoting
        )

    assert batch_files_purge(now=timezone.now())["rejected line messages"] == 1

    old_line = RejectedLine.objects.get(batch=old)
    assert (old_line.line, old_line.reference, old_line.code, old_line.message) == (
        7,
        "REF-7",
        "VALIDATION_ERROR",
        "",
    )
    assert RejectedLine.objects.get(batch=young).message == quoting


def test_an_unfinished_batch_keeps_its_files_whatever_their_age(batch_home, client_8002):
    reprocessing = batch_with_files(
        client_8002, "again", finished_days_ago=400, status="PROCESSING"
    )

    batch_files_purge(now=timezone.now())

    assert files_of(reprocessing) == (True, True)


def test_a_file_already_gone_is_forgotten_all_the_same(batch_home, client_8002):
    old = batch_with_files(client_8002, "old", finished_days_ago=100)
    batch_storage().delete(old.archived_path)

    assert batch_files_purge(now=timezone.now())["batch originals"] == 1
    old.refresh_from_db()
    assert old.archived_path == ""


def test_the_dry_run_counts_the_files_and_deletes_none(batch_home, client_8002):
    old = batch_with_files(client_8002, "old", finished_days_ago=100)

    counts = personal_data_purge(dry_run=True)

    assert (counts["batch originals"], counts["batch result files"]) == (1, 1)
    assert files_of(old) == (True, True)


def test_gateway_events_past_their_period_are_deleted(settings, client_8002):
    settings.GATEWAY_EVENT_RETENTION_DAYS = 180
    old, young = (
        gateway_event_record(
            action="LOGIN",
            protocol="sftp",
            address="203.0.113.5",
            username="bankdemo",
            client=client_8002,
        )
        for _ in range(2)
    )
    GatewayEvent.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=181))
    GatewayLoginFailure.objects.create(
        address="203.0.113.6",
        username="guess",
        protocol="sftp",
        reason="UNKNOWN_USER",
        created_at=timezone.now() - timedelta(seconds=settings.GATEWAY_DEFENDER_KEEP_SECONDS + 60),
    )

    counts = gateway_logs_purge(now=timezone.now())

    assert counts["gateway events"] == 1
    assert counts["gateway defender rows"] == 1
    assert list(GatewayEvent.objects.all()) == [young]
    assert not GatewayLoginFailure.objects.exists()


def test_sign_in_logs_past_their_period_are_deleted(settings, db):
    settings.SIGN_IN_LOG_RETENTION_DAYS = 180
    common = {
        "user_agent": "test",
        "ip_address": "203.0.113.5",
        "username": "support",
        "http_accept": "*/*",
        "path_info": "/admin/login/",
    }
    for model, extra in (
        (AccessLog, {}),
        (AccessFailureLog, {}),
        (AccessAttempt, {"get_data": "", "post_data": "", "failures_since_start": 1}),
    ):
        old = model.objects.create(**common, **extra)
        model.objects.filter(pk=old.pk).update(attempt_time=timezone.now() - timedelta(days=200))
        model.objects.create(**{**common, "username": "young"}, **extra)

    counts = sign_in_logs_purge(now=timezone.now())

    assert counts == {"sign-in attempts": 1, "sign-in failures": 1, "sign-in log": 1}
    for model in (AccessLog, AccessFailureLog, AccessAttempt):
        assert list(model.objects.values_list("username", flat=True)) == ["young"]


def test_records_of_who_read_personal_data_are_kept_their_own_period(settings, db):
    settings.PERSONAL_DATA_ACCESS_RETENTION_DAYS = 730
    for username, days in (("old", 800), ("young", 700)):
        PersonalDataAccess.objects.create(
            at=timezone.now() - timedelta(days=days),
            username=username,
            kind=AccessKind.VIEW,
            address="203.0.113.7",
        )

    assert personal_data_purge(dry_run=True)["access records"] == 1
    assert personal_data_purge()["access records"] == 1

    assert list(PersonalDataAccess.objects.values_list("username", flat=True)) == ["young"]
    assert RetentionRun.objects.get().counts["access records"] == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_part_stopped_by_a_database_error_keeps_no_other_part_from_its_work(settings):
    settings.PERSONAL_DATA_ACCESS_RETENTION_DAYS = 730
    PersonalDataAccess.objects.create(
        at=timezone.now() - timedelta(days=800), username="old", kind=AccessKind.VIEW
    )
    table = AccessLog._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO gone_for_a_moment")
    try:
        counts = personal_data_purge()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE gone_for_a_moment RENAME TO {table}")

    assert counts["parts stopped by an error"] == 1  # the sign-in logs' part
    assert counts["access records"] == 1  # the part after it still ran
    assert not PersonalDataAccess.objects.exists()
    assert RetentionRun.objects.get().finished_at is not None


def test_one_run_purges_every_kind_and_records_it(batch_home, client_8002):
    batch_with_files(client_8002, "old", finished_days_ago=100)

    personal_data_purge()

    run = RetentionRun.objects.get()
    assert run.counts["batch originals"] == 1
    assert run.counts["batch result files"] == 1
