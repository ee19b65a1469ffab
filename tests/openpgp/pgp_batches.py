"""OpenPGP batch files made by the client's own gpg, and the client 8002 that receives them.

The bank's key ring (a temporary GNUPGHOME) is made once a module: its Curve25519 and RSA-3072
key pairs, and a key of somebody else's. Each test gets a fresh platform key for 8002, which
the bank imports as a client would (``gpg --import platform.asc``).
"""

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from batches.batch_encryption import batch_encryption_set
from batches.file_storage import batch_storage
from batches.models import Batch, OpenPGPPlatformKey
from batches.openpgp_keys import client_key_set, generate_key_pair
from tests.batches import conftest as batch_fixtures
from tests.batches.conftest import line
from tests.batches.test_ingest import ingest  # noqa: F401 (upload, receive, ingest, refresh)
from tests.openpgp.conftest import ClientGpg, client_gpg_home

batch_home = batch_fixtures.batch_home

ECC, RSA, OTHER = "bank-ecc <ops@bank.example>", "bank-rsa <rsa@bank.example>", "mallory <m@x>"


@dataclass
class Bank:
    """The client's side: its gpg, its keys' fingerprints, the platform key it encrypts to."""

    gpg: ClientGpg
    fingerprints: dict[str, str]
    platform: str = ""  # the fingerprint of the platform key imported last

    def import_platform_key(self, key: OpenPGPPlatformKey) -> None:
        self.gpg.run("--import", input=key.public_key.encode())
        self.platform = key.fingerprint

    def encrypt(
        self,
        text: str,
        *,
        signer: str | None = None,
        armour: bool = False,
        recipient: str | None = None,
        options: tuple[str, ...] = (),
    ) -> bytes:
        """`gpg --encrypt [--sign -u signer] -r platform` of `text`, as a client runs it."""
        args = ["--trust-model", "always", *options, "--encrypt"]
        args += ["--recipient", recipient or self.platform]
        if signer:
            args += ["--sign", "--local-user", self.fingerprints[signer]]
        if armour:
            args.append("--armor")
        return self.gpg.run(*args, "--output", "-", input=text.encode()).stdout

    def open_result(self, data: bytes) -> tuple[str, list[str]]:
        """Decrypt a result file with the bank's secret key: (the CSV, gpg's status lines)."""
        run = self.gpg.run(
            "--status-fd", "2", "--trust-model", "always", "--decrypt", input=data, check=False
        )
        assert run.returncode == 0, run.stderr.decode()
        status = [
            line.removeprefix("[GNUPG:] ")
            for line in run.stderr.decode().splitlines()
            if line.startswith("[GNUPG:] ")
        ]
        return run.stdout.decode(), status


@pytest.fixture(scope="module")
def bank():
    with client_gpg_home("bank-gpg-") as gpg:
        fingerprints = {
            ECC: gpg.new_key(ECC),  # gpg's default: Ed25519 signing, Curve25519 encryption
            RSA: gpg.new_key(RSA, "rsa3072"),
            OTHER: gpg.new_key(OTHER),
        }
        yield Bank(gpg, fingerprints)


@pytest.fixture
def pgp_client(batch_home, client_8002, app_8002, bank):
    """Client 8002 on openpgp, with the bank's Curve25519 key on file and a platform key the
    bank has imported."""
    client_key_set(client_8002, bank.gpg.export(ECC))
    batch_encryption_set(client_8002, "openpgp")
    bank.import_platform_key(OpenPGPPlatformKey.objects.get(client=client_8002))
    return client_8002


def require_signature(client) -> None:
    batch_encryption_set(client, "openpgp", require_signature=True)


def new_platform_key(client, **fields) -> OpenPGPPlatformKey:
    """A further platform key row for the client (as a rotation makes)."""
    private, public, fingerprint = generate_key_pair(f"Kokatto batches for {client.client_id}")
    key = OpenPGPPlatformKey(client=client, public_key=public, fingerprint=fingerprint, **fields)
    key.set_private_key(private)
    key.save()
    return key


def lines_csv(*references: str) -> str:
    return "".join(line(reference) + "\n" for reference in references)


def stored(path: str) -> bytes:
    with batch_storage().open(path, "rb") as file:
        return file.read()


def result_rows(bank: Bank, batch: Batch) -> list[list[str]]:
    text, _ = bank.open_result(stored(batch.result_path))
    return list(csv.reader(io.StringIO(text)))


def files_kept(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def first_packet(message: bytes) -> bytes:
    """The bytes of a binary OpenPGP message's first packet (header and body)."""
    tag = message[0]
    if tag & 0x40:  # new format, one- or two-byte length
        first = message[1]
        if first < 192:
            return message[: 2 + first]
        return message[: 3 + ((first - 192) << 8) + message[2] + 192]
    size = 1 << (tag & 0x03)  # old format: the length's size is in the tag byte
    return message[: 1 + size + int.from_bytes(message[1 : 1 + size], "big")]


def literal_data_packet(data: bytes) -> bytes:
    """A literal data packet (RFC 4880 5.9, new format 4.2.2): ``data`` in the clear."""
    body = b"b" + bytes([8]) + b"plain.cs" + (0).to_bytes(4, "big") + data
    if len(body) < 192:
        return bytes([0xC0 | 11, len(body)]) + body
    assert len(body) < 8384
    length = len(body) - 192
    return bytes([0xC0 | 11, (length >> 8) + 192, length & 0xFF]) + body
