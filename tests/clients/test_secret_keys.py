import pytest
from django.db import IntegrityError, connection

from clients.keys import SecretKeyError, fingerprint_of, secret_key_create, secret_key_deactivate
from clients.models import SecretKey
from tests.factories import ClientFactory


@pytest.fixture
def client(db):
    return ClientFactory(client_id="8002")


def test_it_issues_a_random_secret_of_at_least_32_bytes(client):
    key, secret = secret_key_create(client=client)
    _, other_secret = secret_key_create(client=client)

    assert len(secret) >= 43  # 32 bytes in URL-safe base64
    assert secret != other_secret
    assert key.fingerprint == fingerprint_of(secret)
    assert key.secret() == secret


def test_the_database_column_holds_no_plaintext(client):
    key, secret = secret_key_create(client=client)

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_encrypted FROM clients_secretkey WHERE id = %s", [key.pk])
        stored = cursor.fetchone()[0]
    assert secret not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token


def test_a_third_active_key_is_refused(client):
    secret_key_create(client=client)
    secret_key_create(client=client)

    with pytest.raises(SecretKeyError, match="already has 2 active secret keys"):
        secret_key_create(client=client)
    assert client.secret_keys.count() == 2


def test_deactivating_a_key_frees_a_slot_for_rotation(client):
    old, _ = secret_key_create(client=client)
    secret_key_create(client=client)

    assert secret_key_deactivate(key=old) is True
    new, _ = secret_key_create(client=client)

    assert new.slot == old.slot
    assert client.secret_keys.filter(is_active=True).count() == 2
    assert secret_key_deactivate(key=old) is False


def test_an_expired_key_frees_its_slot(client):
    from datetime import timedelta

    from django.utils import timezone

    expired, _ = secret_key_create(client=client)
    secret_key_create(client=client)
    SecretKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))

    secret_key_create(client=client)

    expired.refresh_from_db()
    assert expired.is_active is False
    assert client.secret_keys.filter(is_active=True).count() == 2


def test_the_database_itself_refuses_two_active_keys_in_one_slot(client):
    key, _ = secret_key_create(client=client)

    with pytest.raises(IntegrityError):
        SecretKey.objects.create(
            client=client, slot=key.slot, secret_encrypted="x", fingerprint="x"
        )


def test_an_inactive_client_gets_no_key(client):
    client.is_active = False
    client.save()

    with pytest.raises(SecretKeyError, match="inactive"):
        secret_key_create(client=client)


def test_a_short_chosen_secret_is_refused(client):
    with pytest.raises(SecretKeyError, match="at least 32"):
        secret_key_create(client=client, secret="too-short")
