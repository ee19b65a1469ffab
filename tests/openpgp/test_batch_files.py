"""OpenPGP batch files from the client's real gpg, ingested end to end; results back to gpg."""

import pytest
from django.utils import timezone

from batches.file_storage import batch_storage
from batches.models import OpenPGPPlatformKey, RejectedLine
from batches.openpgp_decryption import _packet_tags
from batches.results import result_base_name
from notifications.models import Notification
from tests.clients.conftest import lost_key_token
from tests.openpgp import pgp_batches
from tests.openpgp.pgp_batches import (
    ECC,
    OTHER,
    RSA,
    files_kept,
    first_packet,
    ingest,
    lines_csv,
    literal_data_packet,
    new_platform_key,
    require_signature,
    result_rows,
    stored,
)

pytestmark = pytest.mark.django_db

# Fixtures: a fresh local batch storage, the bank's gpg (once a module), client 8002 on openpgp.
batch_home, bank, pgp_client = pgp_batches.batch_home, pgp_batches.bank, pgp_batches.pgp_client

HEADER = ["line", "clientNotifRefId", "status", "code", "message"]


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize("armour", [False, True], ids=["binary", "armoured"])
@pytest.mark.parametrize("key", [ECC, RSA], ids=["curve25519", "rsa3072"])
def test_a_file_encrypted_by_gpg_is_ingested_and_its_result_opens_with_gpg(
    pgp_client, bank, key, armour, signed
):
    from batches.openpgp_keys import client_key_set

    client_key_set(pgp_client, bank.gpg.export(key))
    name = "reminders.csv.asc" if armour else "reminders.csv.gpg"
    data = bank.encrypt(lines_csv("REF-1", "REF-2"), signer=key if signed else None, armour=armour)

    batch = ingest(pgp_client, name, data)

    assert (batch.status, batch.lines_accepted) == ("DONE", 2), batch.failure_message
    assert list(
        Notification.objects.filter(batch=batch).order_by("batch_line").values_list("reference")
    ) == [("REF-1",), ("REF-2",)]
    ending = ".asc" if armour else ".pgp"
    assert batch.result_path == f"8002/outbox/reminders.result.csv{ending}"
    result = stored(batch.result_path)
    assert result.startswith(b"-----BEGIN PGP MESSAGE-----") == armour
    text, status = bank.open_result(result)
    assert text.splitlines()[0] == ",".join(f'"{cell}"' for cell in HEADER)
    assert '2,"REF-2","ACCEPTED"' in text
    platform = OpenPGPPlatformKey.objects.get(client=pgp_client).fingerprint
    assert any(s.startswith("VALIDSIG ") and s.endswith(platform) for s in status), status
    assert "DECRYPTION_OKAY" in status
    assert batch_storage().exists(f"8002/archive/{batch.pk}-{name}")


def test_a_file_signed_as_the_client_requires_is_ingested(pgp_client, bank):
    require_signature(pgp_client)
    batch = ingest(pgp_client, "signed.pgp", bank.encrypt(lines_csv("S-1"), signer=ECC))
    assert (batch.status, batch.lines_accepted) == ("DONE", 1)


@pytest.mark.parametrize(
    "options", [("--sign",), ("--clearsign",)], ids=["signed-only", "clear-signed"]
)
def test_a_file_signed_but_not_encrypted_is_refused_and_deleted(
    pgp_client, bank, batch_home, options
):
    data = bank.gpg.run(*options, "--output", "-", input=lines_csv("CLEAR-1").encode()).stdout

    batch = ingest(pgp_client, "clear.csv.gpg", data)

    assert (batch.status, batch.failure_code, batch.archived_path) == (
        "FAILED",
        "NOT_ENCRYPTED",
        "",
    )
    assert "deleted, not kept" in batch.failure_message
    assert files_kept(batch_home) == [batch.result_path]
    assert result_rows(bank, batch)[1][:4] == ["0", "", "REJECTED", "NOT_ENCRYPTED"]
    assert not Notification.objects.exists()


def test_a_plain_csv_is_refused_before_any_key_is_needed_and_deleted(
    batch_home, client_8002, app_8002, bank
):
    from batches.batch_encryption import batch_encryption_set

    batch_encryption_set(client_8002, "openpgp")  # no client key on file: no result either

    batch = ingest(client_8002, "plain.csv", lines_csv("CLEAR-1").encode())

    assert (batch.status, batch.failure_code) == ("FAILED", "NOT_ENCRYPTED")
    assert batch.failure_message.startswith("the file is plain text, not an OpenPGP message")
    assert files_kept(batch_home) == []
    assert not Notification.objects.exists()


def _crafted(bank, csv: str, *, session_keys: int) -> bytes:
    """A real message's session-key packet (repeated), then the CSV in a literal data packet:
    gpg writes the CSV out and exits 0 (DECRYPTION_KEY, PLAINTEXT, no DECRYPTION_OKAY)."""
    session_key = first_packet(bank.encrypt(csv))
    assert session_key[0] in (0x84, 0x85, 0xC1)  # a public-key encrypted session key
    return session_key * session_keys + literal_data_packet(csv.encode())


@pytest.mark.parametrize(
    "content",
    ["utf-16", "nul-and-esc", "session-key-then-literal", "many-session-keys-then-literal"],
)
def test_a_file_that_is_no_encrypted_message_is_not_encrypted_and_deleted(
    pgp_client, bank, batch_home, content
):
    csv = lines_csv("CLEAR-1", "CLEAR-2")
    data = {
        "utf-16": lambda: csv.encode("utf-16"),
        "nul-and-esc": lambda: csv.replace("CLEAR-1", "CLEAR\x00\x1b-1").encode(),
        "session-key-then-literal": lambda: _crafted(bank, csv, session_keys=1),
        # past the first bytes read before gpg runs: gpg's own statuses tell
        "many-session-keys-then-literal": lambda: _crafted(bank, csv, session_keys=120),
    }[content]()

    batch = ingest(pgp_client, "clear.pgp", data)

    assert (batch.status, batch.failure_code, batch.archived_path) == (
        "FAILED",
        "NOT_ENCRYPTED",
        "",
    ), batch.failure_message
    assert "deleted, not kept" in batch.failure_message
    assert files_kept(batch_home) == [batch.result_path]
    assert not Notification.objects.exists()


def test_a_file_encrypted_to_another_key_is_refused_with_wrong_key(pgp_client, bank, batch_home):
    data = bank.encrypt(lines_csv("W-1"), recipient=bank.fingerprints[OTHER])

    batch = ingest(pgp_client, "other.pgp", data)

    assert (batch.status, batch.failure_code) == ("FAILED", "WRONG_KEY")
    assert "none of them a platform key of this client" in batch.failure_message
    assert batch_storage().exists(f"8002/failed/{batch.pk}-other.pgp")
    assert result_rows(bank, batch)[1][:4] == ["0", "", "REJECTED", "WRONG_KEY"]
    assert not Notification.objects.exists()


def test_a_file_encrypted_with_a_passphrase_only_is_refused_with_wrong_key(pgp_client, bank):
    data = bank.gpg.run(
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "s3cret",
        "--symmetric",
        "--output",
        "-",
        input=lines_csv("SYM-1").encode(),
    ).stdout

    batch = ingest(pgp_client, "sym.pgp", data)

    assert (batch.status, batch.failure_code) == ("FAILED", "WRONG_KEY")
    assert "encrypted with a passphrase only" in batch.failure_message
    assert not Notification.objects.exists()


def test_an_unsigned_file_of_a_client_requiring_signatures_is_refused_and_nothing_stored(
    pgp_client, bank
):
    require_signature(pgp_client)

    batch = ingest(pgp_client, "unsigned.pgp", bank.encrypt(lines_csv("U-1", "U-2")))

    assert (batch.status, batch.failure_code, batch.lines_read) == ("FAILED", "BAD_SIGNATURE", 0)
    assert batch.failure_message.startswith("the file is not signed")
    assert not Notification.objects.exists()
    assert not RejectedLine.objects.exists()


@pytest.mark.parametrize("required", [True, False], ids=["required", "not-required"])
def test_a_file_signed_by_another_key_is_refused_with_bad_signature(pgp_client, bank, required):
    if required:
        require_signature(pgp_client)

    batch = ingest(pgp_client, "forged.pgp", bank.encrypt(lines_csv("F-1"), signer=OTHER))

    assert (batch.status, batch.failure_code) == ("FAILED", "BAD_SIGNATURE")
    assert batch.failure_message == (
        "the file is signed by a key that is not the client's key on file"
    )
    assert not Notification.objects.exists()


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped"])
def test_a_damaged_file_is_refused_with_corrupt_archive(pgp_client, bank, batch_home, damage):
    data = bytearray(bank.encrypt(lines_csv(*(f"D-{n}" for n in range(200))), signer=ECC))
    if damage == "truncated":
        data = data[: len(data) * 2 // 3]
    else:
        data[len(data) // 2] ^= 0x10  # inside the encrypted data, past the session key

    batch = ingest(pgp_client, f"{damage}.pgp", bytes(data))

    assert (batch.status, batch.failure_code) == ("FAILED", "CORRUPT_ARCHIVE")
    assert batch.failure_message.startswith("the file is damaged or truncated")
    assert batch_storage().exists(f"8002/failed/{batch.pk}-{damage}.pgp")
    assert not Notification.objects.exists()


def test_a_compressed_bomb_is_stopped_at_the_ratio_limit(pgp_client, bank, settings):
    zeros = "\n" * (64 * 1024 * 1024)  # bzip2 packs it into a few hundred bytes
    data = bank.encrypt(zeros, options=("--compress-algo", "bzip2"))
    assert len(data) * settings.BATCH_MAX_RATIO < len(zeros)

    batch = ingest(pgp_client, "bomb.pgp", data)

    assert (batch.status, batch.failure_code, batch.lines_read) == (
        "FAILED",
        "ARCHIVE_TOO_LARGE",
        0,
    )
    assert "unpacked past the limit" in batch.failure_message


def test_a_file_past_the_size_limit_is_refused_while_it_decrypts(pgp_client, bank, settings):
    settings.BATCH_MAX_UNCOMPRESSED_BYTES = 10_000
    batch = ingest(pgp_client, "big.pgp", bank.encrypt(lines_csv(*map(str, range(200)))))
    assert (batch.status, batch.failure_code) == ("FAILED", "ARCHIVE_TOO_LARGE")
    assert "10,000 bytes" in batch.failure_message


def test_a_file_past_the_line_limit_is_refused_while_it_decrypts(pgp_client, bank, settings):
    settings.BATCH_MAX_LINES = 10
    batch = ingest(pgp_client, "long.pgp", bank.encrypt(lines_csv(*map(str, range(50)))))
    assert (batch.status, batch.failure_code, batch.lines_read) == (
        "FAILED",
        "TOO_MANY_LINES",
        0,
    )


def test_a_key_rotated_out_still_decrypts_until_it_is_retired(pgp_client, bank):
    old = OpenPGPPlatformKey.objects.get(client=pgp_client)
    new = new_platform_key(pgp_client)
    bank.import_platform_key(new)  # for the result's signature
    to_old = bank.encrypt(lines_csv("OLD-1"), recipient=old.fingerprint)

    batch = ingest(pgp_client, "old-key.pgp", to_old)

    assert (batch.status, batch.lines_accepted) == ("DONE", 1)
    _, status = bank.open_result(stored(batch.result_path))
    assert any(s.startswith("VALIDSIG ") and s.endswith(new.fingerprint) for s in status)

    OpenPGPPlatformKey.objects.filter(pk=old.pk).update(retired_at=timezone.now())
    again = ingest(
        pgp_client, "old-key-2.pgp", bank.encrypt(lines_csv("OLD-2"), recipient=old.fingerprint)
    )
    assert (again.status, again.failure_code) == ("FAILED", "WRONG_KEY")


def test_a_client_without_its_public_key_gets_client_key_missing_and_no_result(
    batch_home, client_8002, app_8002, bank
):
    from batches.batch_encryption import batch_encryption_set

    batch_encryption_set(client_8002, "openpgp")
    bank.import_platform_key(OpenPGPPlatformKey.objects.get(client=client_8002))

    batch = ingest(client_8002, "nokey.pgp", bank.encrypt(lines_csv("N-1")))

    assert (batch.status, batch.failure_code, batch.result_path) == (
        "FAILED",
        "CLIENT_KEY_MISSING",
        "",
    )
    assert "upload your public key" in batch.failure_message
    # Kept for support to reprocess once the key is on file.
    assert batch_storage().exists(f"8002/failed/{batch.pk}-nokey.pgp")
    assert not Notification.objects.exists()


def test_an_unreadable_platform_key_fails_the_batch_and_keeps_it(pgp_client, bank, caplog):
    data = bank.encrypt(lines_csv("K-1"))
    OpenPGPPlatformKey.objects.filter(client=pgp_client).update(
        private_key_encrypted=lost_key_token("lost")
    )

    batch = ingest(pgp_client, "lost.pgp", data)

    assert (batch.status, batch.failure_code) == ("FAILED", "OPENPGP_KEY_UNREADABLE")
    assert "an OpenPGP platform key of client 8002 is opened by no FIELD_ENCRYPTION_KEY" in (
        caplog.text
    )
    assert batch_storage().exists(f"8002/failed/{batch.pk}-lost.pgp")


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("may.csv.pgp", "may"),
        ("may.csv.gpg", "may"),
        ("may.CSV.ASC", "may"),
        ("may.pgp", "may"),
        ("may.7z", "may"),
        ("may.csv", "may"),
        (".pgp", "batch"),
    ],
)
def test_result_base_name_strips_the_openpgp_and_csv_endings(name, base):
    assert result_base_name(name) == base


def test_a_message_without_integrity_protection_is_refused_with_corrupt_archive(pgp_client, bank):
    # gpg 2.2's --rfc2440 writes the old encrypted data packet (9), without MDC.
    data = bank.encrypt(lines_csv("NOMDC-1"), options=("--rfc2440", "--cipher-algo", "AES256"))
    assert _packet_tags(data) == [1, 9]

    batch = ingest(pgp_client, "nomdc.pgp", data)

    assert (batch.status, batch.failure_code) == ("FAILED", "CORRUPT_ARCHIVE")
    assert batch.failure_message.startswith("the file has no integrity protection (no MDC or AEAD)")
    assert not Notification.objects.exists()


@pytest.mark.parametrize("armour", [(), ("--armor",)], ids=["binary", "armoured"])
def test_the_files_the_clients_gpg_commands_write_are_accepted_under_their_own_names(
    pgp_client, bank, tmp_path, armour
):
    # The client checked the platform key's fingerprint and certified it locally, so its gpg
    # encrypts to it in batch mode without --trust-model always.
    bank.gpg.run("--quick-lsign-key", bank.platform)
    csv_file = tmp_path / "june.csv"
    csv_file.write_text(lines_csv("JUNE-1"))
    signer = bank.fingerprints[ECC]
    bank.gpg.run(*armour, "--encrypt", "--sign", "-r", bank.platform, "-u", signer, str(csv_file))
    [written] = [p for p in tmp_path.iterdir() if p != csv_file]
    assert written.name == ("june.csv.asc" if armour else "june.csv.gpg")

    batch = ingest(pgp_client, written.name, written.read_bytes())

    assert (batch.status, batch.lines_accepted) == ("DONE", 1)
    ending = ".asc" if armour else ".pgp"
    assert batch.result_path == f"8002/outbox/june.result.csv{ending}"


def test_with_every_platform_key_retired_a_file_is_wrong_key_and_gets_no_unsigned_result(
    pgp_client, bank, batch_home
):
    data = bank.encrypt(lines_csv("R-1"))
    OpenPGPPlatformKey.objects.filter(client=pgp_client).update(retired_at=timezone.now())

    batch = ingest(pgp_client, "retired.pgp", data)

    assert (batch.status, batch.failure_code, batch.result_path) == ("FAILED", "WRONG_KEY", "")
    assert "platform keys in use: none" in batch.failure_message
    assert batch_storage().exists(f"8002/failed/{batch.pk}-retired.pgp")
