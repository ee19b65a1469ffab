"""`manage.py rotate_encryption_keys`: after it, the old FIELD_ENCRYPTION_KEY can be dropped."""

import json
import threading
import time

import pytest
from cryptography.fernet import InvalidToken
from django.apps import apps
from django.db import DatabaseError, connection, transaction

from batches.ingest import batch_ingest
from batches.openpgp_keys import platform_key_current, platform_key_ensure
from clients.encryption import EncryptedTextField, decrypt_text, encrypted_columns
from clients.models import Client, SecretKey
from notifications.client_callbacks import client_callbacks_send_due
from tests.api.conftest import SECRET_8002, NotifApi, demo_fields
from tests.batches.conftest import PASSWORD, line, receive
from tests.batches.test_ingest import result_rows
from tests.clients.conftest import lost_key_token, rotate
from tests.delivery.slow_http import slow_http_server
from tests.delivery.test_client_callbacks import expected_signature, pending_callbacks
from tests.factories import ClientFactory, issue_key

SECRET_KEYS = "clients_secretkey.secret_encrypted"
OPENPGP_KEYS = "batches_openpgpplatformkey.private_key_encrypted"
BATCH_PASSWORDS = "clients_client.batch_password_encrypted"


def summary(output: str, label: str) -> str:
    (found,) = [row for row in output.splitlines() if row.startswith(f"{label}:")]
    return found.split(": ", 1)[1]


def stored(model, pk, column):
    return model.objects.values_list(column, flat=True).get(pk=pk)


@pytest.fixture
def secrets_under_old_key(encryption_keys, app_8002, batch_home):
    """Client 8002 with a secret key and a batch password, both encrypted with the old key."""
    issue_key(app_8002.client, secret=SECRET_8002)
    app_8002.client.set_batch_password(PASSWORD)
    app_8002.client.save()
    return app_8002.client


def test_after_rotation_the_old_key_can_be_dropped_and_api_batches_callbacks_still_work(
    encryption_keys, secrets_under_old_key, tmp_path, callbacks_to_loopback
):
    client = secrets_under_old_key
    private_key = platform_key_ensure(client).private_key()
    encryption_keys.configure(encryption_keys.new, encryption_keys.old)

    output = rotate("--batch-size", "1")
    encryption_keys.configure(encryption_keys.new)

    assert summary(output, SECRET_KEYS) == "1 re-encrypted, 0 already current, 0 unreadable"
    assert summary(output, BATCH_PASSWORDS) == "1 re-encrypted, 0 already current, 0 unreadable"
    assert summary(output, OPENPGP_KEYS) == "1 re-encrypted, 0 already current, 0 unreadable"
    assert platform_key_current(client).private_key() == private_key
    answer = NotifApi("8002", SECRET_8002).create(**demo_fields())
    assert (answer.status_code, answer.code) == (201, "OK")
    batch = receive(client, tmp_path, "reminders.7z", line("BATCH-1") + "\n")
    assert batch_ingest(batch_id=batch.pk) == "DONE"
    batch.refresh_from_db()
    assert result_rows(batch)[1] == ["1", "BATCH-1", "ACCEPTED", "", ""]
    with slow_http_server() as client_system:
        Client.objects.filter(pk=client.pk).update(callback_url=client_system.url)
        client.refresh_from_db()
        pending_callbacks(client, 1)
        assert client_callbacks_send_due().tried == 1
    [exchange] = client_system.exchanges
    assert exchange.headers["X-Kokatto-Signature"] == expected_signature(
        SECRET_8002, exchange.body, exchange.headers["X-Kokatto-Timestamp"]
    )
    assert json.loads(exchange.body)["requestId"] == "R-000"


def test_a_second_run_finds_every_value_already_current(encryption_keys, secrets_under_old_key):
    encryption_keys.configure(encryption_keys.new, encryption_keys.old)
    rotate()
    key = SecretKey.objects.get()
    token_after_first_run = key.secret_encrypted

    output = rotate()

    assert summary(output, SECRET_KEYS) == "0 re-encrypted, 1 already current, 0 unreadable"
    assert summary(output, BATCH_PASSWORDS) == "0 re-encrypted, 1 already current, 0 unreadable"
    assert stored(SecretKey, key.pk, "secret_encrypted") == token_after_first_run


def test_a_dry_run_counts_and_changes_nothing(encryption_keys, secrets_under_old_key):
    encryption_keys.configure(encryption_keys.new, encryption_keys.old)
    before = SecretKey.objects.get().secret_encrypted

    output = rotate("--dry-run")

    assert summary(output, SECRET_KEYS) == "1 to re-encrypt, 0 already current, 0 unreadable"
    assert SecretKey.objects.get().secret_encrypted == before
    encryption_keys.configure(encryption_keys.new)
    assert "2 stored value(s) can be opened by no key" in rotate("--dry-run", fails=True)


def test_a_value_no_key_opens_is_reported_with_its_client_and_the_others_are_rotated(
    encryption_keys, secrets_under_old_key, client_8003, caplog
):
    lost = issue_key(client_8003)[0]
    SecretKey.objects.filter(pk=lost.pk).update(secret_encrypted=lost_key_token("gone"))
    encryption_keys.configure(encryption_keys.new, encryption_keys.old)

    output = rotate(fails=True)

    assert summary(output, SECRET_KEYS) == "1 re-encrypted, 0 already current, 1 unreadable"
    assert f"  unreadable: row {lost.pk} of client 8003" in output.splitlines()
    assert "1 stored value(s) can be opened by no key in FIELD_ENCRYPTION_KEY" in output
    assert f"row {lost.pk} (client 8003) is opened by no FIELD_ENCRYPTION_KEY" in caplog.text
    encryption_keys.configure(encryption_keys.new)
    kept = SecretKey.objects.get(client__client_id="8002")
    assert decrypt_text(kept.secret_encrypted) == SECRET_8002


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_interrupted_rotation_keeps_the_batches_it_committed_and_a_rerun_finishes(
    encryption_keys,
):
    clients = [ClientFactory(client_id=str(8100 + n)) for n in range(5)]
    keys = [issue_key(client)[0] for client in clients]
    encryption_keys.configure(encryption_keys.new, encryption_keys.old)
    # The database refuses to update the fourth key: the run dies in its second batch.
    refuse_update_of(keys[3].pk)
    try:
        with pytest.raises(DatabaseError):
            rotate("--batch-size", "2")
    finally:
        allow_updates()

    encryption_keys.configure(encryption_keys.new)
    readable = [_readable(stored(SecretKey, key.pk, "secret_encrypted")) for key in keys]
    assert readable == [True, True, False, False, False]
    encryption_keys.configure(encryption_keys.new, encryption_keys.old)
    assert summary(rotate("--batch-size", "2"), SECRET_KEYS) == (
        "3 re-encrypted, 2 already current, 0 unreadable"
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_batch_password_set_while_rotation_runs_is_never_overwritten_with_the_old_one(
    encryption_keys, client_8002
):
    client_8002.set_batch_password("old-pass")
    client_8002.save()
    encryption_keys.configure(encryption_keys.new, encryption_keys.old)
    saved, commit, printed = threading.Event(), threading.Event(), []

    def operator_sets_a_new_password():
        with transaction.atomic():
            client = Client.objects.select_for_update().get(pk=client_8002.pk)
            client.set_batch_password("new-pass")
            client.save()
            saved.set()
            commit.wait(30)
        connection.close()

    def rotation():
        printed.append(rotate())
        connection.close()

    operator = threading.Thread(target=operator_sets_a_new_password)
    operator.start()
    saved.wait(30)
    rotating = threading.Thread(target=rotation)
    rotating.start()
    # The rotation read the old password and now waits for the operator's row lock.
    wait_for_a_lock_wait()
    commit.set()
    operator.join(30)
    rotating.join(30)

    assert summary(printed[0], BATCH_PASSWORDS) == (
        "0 re-encrypted, 0 already current, 0 unreadable, 1 changed meanwhile (run again)"
    )
    encryption_keys.configure(encryption_keys.new)
    assert Client.objects.get(pk=client_8002.pk).batch_password() == "new-pass"


def wait_for_a_lock_wait(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the rotation never waited for the operator's lock")


def test_every_column_holding_tokens_is_an_encrypted_field_that_rotation_finds():
    token_columns = {
        f"{model._meta.db_table}.{field.column}"
        for model in apps.get_models()
        for field in model._meta.local_fields
        if field.name.endswith("_encrypted")
    }
    assert token_columns == {SECRET_KEYS, BATCH_PASSWORDS, OPENPGP_KEYS}
    assert {column.label for column in encrypted_columns()} == token_columns
    assert all(isinstance(column.field, EncryptedTextField) for column in encrypted_columns())


def _readable(token: str) -> bool:
    try:
        decrypt_text(token)
    except InvalidToken:
        return False
    return True


def refuse_update_of(pk: int) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_rotation() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'interrupted'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER interrupt_rotation BEFORE UPDATE ON clients_secretkey "
                f"FOR EACH ROW WHEN (OLD.id = {int(pk)}) EXECUTE FUNCTION refuse_rotation()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER interrupt_rotation BEFORE UPDATE ON clients_secretkey "
                f"WHEN OLD.id = {int(pk)} BEGIN SELECT RAISE(ABORT, 'interrupted'); END"
            )


def allow_updates() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TRIGGER interrupt_rotation ON clients_secretkey")
            cursor.execute("DROP FUNCTION refuse_rotation()")
        else:
            cursor.execute("DROP TRIGGER interrupt_rotation")
