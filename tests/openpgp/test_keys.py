"""The platform's key pair per client and the client's own public key, with the real gpg."""

import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from batches.openpgp_keys import (
    HOME_PREFIX,
    OpenPGPKeyError,
    check_client_public_key,
    client_key_set,
    platform_key_current,
    platform_key_ensure,
)
from tests.openpgp.conftest import decrypt_with


def homes_left() -> list[str]:
    return sorted(p.name for p in Path(settings.OPENPGP_HOME_DIR).glob(f"{HOME_PREFIX}*"))


def test_a_file_the_client_encrypts_with_gpg_to_the_exported_key_decrypts_with_the_stored_one(
    client_8002, client_gpg, tmp_path
):
    key = platform_key_ensure(client_8002)
    client_gpg.run("--import", input=key.public_key.encode())
    csv = tmp_path / "batch.csv"
    csv.write_text("reference,msisdn\nR1,+6281234567890\n")
    encrypted = tmp_path / "batch.csv.gpg"
    client_gpg.run(
        "--trust-model", "always", "--recipient", key.fingerprint,
        "--output", str(encrypted), "--encrypt", str(csv),
    )  # fmt: skip
    stored = type(key).objects.get(pk=key.pk)
    with encrypted.open("rb") as source:
        decrypt_with(stored.private_key(), source, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == csv.read_text()


def test_the_platform_key_is_ed25519_with_a_curve25519_encryption_subkey(client_8002, client_gpg):
    key = platform_key_ensure(client_8002)
    client_gpg.run("--import", input=key.public_key.encode())
    listing = client_gpg.run("--with-colons", "--list-keys", key.fingerprint).stdout.decode()
    curves = [line.split(":")[16] for line in listing.splitlines() if line[:3] in ("pub", "sub")]
    assert curves == ["ed25519", "cv25519"]


def test_the_pair_is_made_once_and_the_current_key_is_the_newest_not_retired(client_8002):
    first = platform_key_ensure(client_8002)
    assert platform_key_ensure(client_8002) == first
    assert platform_key_current(client_8002) == first


def test_the_private_key_column_is_not_plaintext(client_8002):
    key = platform_key_ensure(client_8002)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT private_key_encrypted FROM batches_openpgpplatformkey WHERE id = %s", [key.pk]
        )
        (stored,) = cursor.fetchone()
    assert "PRIVATE KEY" not in stored
    assert key.private_key().startswith("-----BEGIN PGP PRIVATE KEY BLOCK-----")


def test_no_gnupg_home_is_left_behind(client_8002, client_gpg, settings):
    settings.OPENPGP_HOME_DIR = Path(tempfile.mkdtemp(prefix="kh-"))  # this test's own
    before = homes_left()
    platform_key_ensure(client_8002)
    client_gpg.new_key("bank <ops@bank.example>", "future-default")
    client_key_set(client_8002, client_gpg.export("bank <ops@bank.example>"))
    with pytest.raises(OpenPGPKeyError):
        check_client_public_key("garbage")
    assert homes_left() == before == []
    settings.OPENPGP_HOME_DIR.rmdir()


@pytest.mark.parametrize(
    ("algo", "usage"),
    [("rsa3072", "sign"), ("future-default", "default")],
    ids=["rsa3072", "curve25519"],
)
def test_a_client_key_made_by_gpg_is_accepted_with_its_fingerprint(
    client_8002, client_gpg, algo, usage
):
    fingerprint = client_gpg.new_key("bank <ops@bank.example>", algo, usage)
    key = client_key_set(client_8002, client_gpg.export("bank <ops@bank.example>"))
    assert key.fingerprint == fingerprint
    assert client_8002.openpgp_client_key == key


def test_a_second_client_key_replaces_the_first(client_8002, client_gpg):
    client_gpg.new_key("one <one@bank.example>", "future-default")
    second = client_gpg.new_key("two <two@bank.example>", "future-default")
    client_key_set(client_8002, client_gpg.export("one <one@bank.example>"))
    client_key_set(client_8002, client_gpg.export("two <two@bank.example>"))
    client_8002.refresh_from_db()
    assert client_8002.openpgp_client_key.fingerprint == second


def test_a_secret_key_is_refused(client_gpg):
    client_gpg.new_key("bank <ops@bank.example>", "future-default")
    with pytest.raises(OpenPGPKeyError, match="secret key"):
        check_client_public_key(client_gpg.export("bank <ops@bank.example>", secret=True))


def test_two_keys_in_one_file_are_refused(client_gpg):
    client_gpg.new_key("one <one@bank.example>", "future-default")
    client_gpg.new_key("two <two@bank.example>", "future-default")
    both = client_gpg.run("--armor", "--export").stdout.decode()
    with pytest.raises(OpenPGPKeyError, match="holds 2 keys"):
        check_client_public_key(both)


def test_garbage_is_refused():
    with pytest.raises(OpenPGPKeyError, match="No OpenPGP public key"):
        check_client_public_key("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n")


def test_an_rsa_1024_key_is_refused(client_gpg):
    client_gpg.new_key("old <old@bank.example>", "rsa1024", "sign")
    with pytest.raises(OpenPGPKeyError, match="at least 2048 bits; this has 1024"):
        check_client_public_key(client_gpg.export("old <old@bank.example>"))


def test_a_key_that_cannot_encrypt_is_refused(client_gpg):
    client_gpg.new_key("signer <sign@bank.example>", "ed25519", "sign")
    with pytest.raises(OpenPGPKeyError, match="cannot encrypt"):
        check_client_public_key(client_gpg.export("signer <sign@bank.example>"))


def test_a_key_file_past_the_size_limit_is_refused(settings):
    settings.OPENPGP_MAX_KEY_BYTES = 100
    with pytest.raises(OpenPGPKeyError, match="larger than 100 bytes"):
        check_client_public_key("x" * 101)


def test_the_minimum_rsa_size_is_a_setting(client_gpg, settings):
    settings.OPENPGP_MIN_RSA_BITS = 4096
    client_gpg.new_key("bank <ops@bank.example>", "rsa3072", "sign")
    with pytest.raises(OpenPGPKeyError, match="at least 4096 bits; this has 3072"):
        check_client_public_key(client_gpg.export("bank <ops@bank.example>"))
