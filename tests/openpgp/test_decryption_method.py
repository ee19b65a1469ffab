"""The openpgp method on its own: what it reads before gpg runs, and gpg's deadline."""

import io
import os
import time

import pytest

from batches.decryption import BatchFileError, ErrorCode, GivenCredentials, Limits, get_decryption
from batches.gpg_process import gpg_run
from batches.openpgp_keys import generate_key_pair, gnupg_home
from tests.openpgp import pgp_batches
from tests.openpgp.pgp_batches import ECC, lines_csv

bank = pgp_batches.bank


class ReadOnlyStream(io.RawIOBase):
    """A remote file as the storage gives it: read front to back, no seek, no name."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.fixture(scope="module")
def platform(bank):
    """A platform key pair (private, public, fingerprint), imported by the bank."""
    private, public, fingerprint = generate_key_pair("Kokatto batches for the method tests")
    bank.gpg.run("--import", input=public.encode())
    return private, public, fingerprint


@pytest.fixture
def credentials(bank, platform):
    return GivenCredentials(private_keys=(platform[0],), client_key=bank.gpg.export(ECC))


def open_plaintext(data: bytes, credentials, workdir) -> bytes:
    method = get_decryption("openpgp")
    with method.open_plaintext(
        ReadOnlyStream(data), credentials=credentials, limits=Limits(), workdir=workdir
    ) as plaintext:
        plaintext.seek(0)
        return plaintext.read()


def refusal(data: bytes, credentials, workdir) -> BatchFileError:
    with pytest.raises(BatchFileError) as caught:
        open_plaintext(data, credentials, workdir)
    assert list(workdir.iterdir()) == []  # nothing of it left in the scratch space
    return caught.value


def test_an_armoured_message_with_crlf_and_armour_headers_is_read(
    bank, platform, credentials, tmp_path
):
    text = lines_csv("ARM-1")
    armoured = bank.encrypt(text, signer=ECC, armour=True, recipient=platform[2]).decode()
    header, rest = armoured.split("\n", 1)
    with_headers = f"{header}\nComment: made by the bank\n{rest}".replace("\n", "\r\n")

    assert open_plaintext(with_headers.encode(), credentials, tmp_path) == text.encode()


def test_a_key_file_uploaded_as_a_batch_is_refused_as_no_message(bank, credentials, tmp_path):
    error = refusal(bank.gpg.export(ECC).encode(), credentials, tmp_path)
    assert error.code == ErrorCode.NOT_ENCRYPTED
    assert error.message.startswith(
        "the file is an armoured OpenPGP key or signature, not an encrypted message"
    )


def test_binary_bytes_that_are_no_openpgp_message_are_not_encrypted(credentials, tmp_path):
    """Bytes we cannot tell from plaintext are never kept: the client has its own copy."""
    error = refusal(b"7z\xbc\xaf\x27\x1c" + os.urandom(200), credentials, tmp_path)
    assert error.code == ErrorCode.NOT_ENCRYPTED
    assert error.message.startswith("the file is not an OpenPGP encrypted message")


def test_an_armour_that_is_no_base64_is_not_encrypted(bank, platform, credentials, tmp_path):
    armoured = bank.encrypt(lines_csv("A-1"), armour=True, recipient=platform[2])
    header, rest = armoured.split(b"\n", 1)
    error = refusal(header + b"\n\n!!!!" + rest, credentials, tmp_path)
    assert error.code == ErrorCode.NOT_ENCRYPTED


def test_gpg_is_killed_at_its_deadline(tmp_path):
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)  # gpg waits on it for ever
    started = time.monotonic()
    with gnupg_home() as gpg, pytest.raises(TimeoutError):
        gpg_run(gpg.gnupghome, ["--decrypt", str(fifo)], seconds=0.5)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("encoding", ["utf-8-sig", "latin-1"])
def test_a_plain_csv_in_any_encoding_is_not_encrypted(credentials, tmp_path, encoding):
    data = '"clientId=8002", "customerName=José"\n'.encode(encoding)
    assert refusal(data, credentials, tmp_path).code == ErrorCode.NOT_ENCRYPTED
