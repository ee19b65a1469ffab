"""Rotation and retirement of the platform's key pairs: plain functions, real gpg keys."""

import threading

import pytest
from django.db import connection

from batches.models import OpenPGPPlatformKey
from batches.openpgp_keys import (
    OpenPGPKeyError,
    fingerprint_grouped,
    platform_key_by_fingerprint,
    platform_key_current,
    platform_key_ensure,
    platform_key_retire,
    platform_key_rotate,
    platform_keys_active,
)
from tests.openpgp import pgp_batches
from tests.openpgp.pgp_batches import ECC, ingest, lines_csv, stored

# Fixtures: a fresh local batch storage, the bank's gpg (once a module), client 8002 on openpgp.
batch_home, bank, pgp_client = pgp_batches.batch_home, pgp_batches.bank, pgp_batches.pgp_client


def test_rotate_makes_a_new_current_key_and_keeps_the_old_one_active(client_8002, operator_user):
    old = platform_key_ensure(client_8002)
    new = platform_key_rotate(client_8002, by=operator_user)
    assert new.fingerprint != old.fingerprint
    assert platform_key_current(client_8002) == new
    assert list(platform_keys_active(client_8002)) == [new, old]
    assert (new.created_by, old.created_by) == (operator_user, None)


def test_a_file_encrypted_to_the_old_key_after_a_rotation_is_still_ingested(pgp_client, bank):
    old = OpenPGPPlatformKey.objects.get(client=pgp_client)  # the one the bank imported
    new = platform_key_rotate(pgp_client)
    assert platform_key_current(pgp_client) == new
    assert bank.platform == old.fingerprint != new.fingerprint

    batch = ingest(pgp_client, "old-key.pgp", bank.encrypt(lines_csv("OLD-1"), signer=ECC))

    assert (batch.status, batch.lines_accepted) == ("DONE", 1), batch.failure_message
    bank.gpg.run("--import", input=new.public_key.encode())  # to check the result's signature
    text, status = bank.open_result(stored(batch.result_path))
    assert '1,"OLD-1","ACCEPTED"' in text
    assert any(s.startswith("VALIDSIG ") and s.endswith(new.fingerprint) for s in status)


def test_rotating_a_client_without_a_key_gives_it_its_first(client_8002):
    key = platform_key_rotate(client_8002)
    assert platform_key_current(client_8002) == key


def test_the_only_active_key_cannot_be_retired(client_8002, operator_user):
    key = platform_key_ensure(client_8002)
    with pytest.raises(OpenPGPKeyError) as refused:
        platform_key_retire(key, by=operator_user)
    assert str(refused.value) == (
        "Client 8002's only active key cannot be retired: uploads would have no key to decrypt "
        "with; rotate first."
    )
    key.refresh_from_db()
    assert key.retired_at is None
    assert platform_key_current(client_8002) == key


def test_the_current_key_cannot_be_retired_while_older_ones_are_active(client_8002):
    platform_key_ensure(client_8002)
    new = platform_key_rotate(client_8002)
    with pytest.raises(
        OpenPGPKeyError, match=r"^The current key cannot be retired: .*rotate first"
    ):
        platform_key_retire(new)
    new.refresh_from_db()
    assert new.retired_at is None


def test_a_retired_key_is_not_current_nor_active_and_records_who_retired_it(
    client_8002, operator_user
):
    old = platform_key_ensure(client_8002)
    new = platform_key_rotate(client_8002)
    platform_key_retire(old, by=operator_user)
    old.refresh_from_db()
    assert old.retired_at is not None
    assert old.retired_by == operator_user
    assert platform_key_current(client_8002) == new
    assert list(platform_keys_active(client_8002)) == [new]
    # and now the new key is the only active one
    with pytest.raises(OpenPGPKeyError, match="only active key"):
        platform_key_retire(new)


def test_a_key_is_retired_once(client_8002):
    old = platform_key_ensure(client_8002)
    platform_key_rotate(client_8002)
    platform_key_retire(old)
    with pytest.raises(OpenPGPKeyError, match=r"is already retired\.$"):
        platform_key_retire(old)


def test_a_key_is_found_by_its_fingerprint_grouped_or_not(client_8002, client_8003):
    key = platform_key_ensure(client_8002)
    other = platform_key_ensure(client_8003)
    assert platform_key_by_fingerprint(client_8002, fingerprint_grouped(key.fingerprint)) == key
    assert platform_key_by_fingerprint(client_8002, key.fingerprint.lower()) == key
    with pytest.raises(OpenPGPKeyError, match=r"^Client 8002 has no platform key "):
        platform_key_by_fingerprint(client_8002, other.fingerprint)


def test_fingerprints_are_shown_in_groups_of_four():
    assert fingerprint_grouped("ABCD1234EF567890") == "ABCD 1234 EF56 7890"


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="the in-memory SQLite test database, shared between threads, locks whole tables "
    '("database table is locked"); CI runs this on PostgreSQL',
)
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_operators_retiring_the_same_key_at_once_retire_it_once(client_8002):
    old = platform_key_ensure(client_8002)
    platform_key_rotate(client_8002)
    start = threading.Barrier(2)
    outcomes, errors = [], []

    def retire() -> None:
        try:
            start.wait(timeout=10)
            platform_key_retire(OpenPGPPlatformKey.objects.get(pk=old.pk))
            outcomes.append("retired")
        except OpenPGPKeyError as exc:
            outcomes.append(str(exc))
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=retire) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(outcomes) == sorted(
        ["retired", f"The key {fingerprint_grouped(old.fingerprint)} is already retired."]
    )
