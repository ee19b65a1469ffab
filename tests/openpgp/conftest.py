"""The client's side of OpenPGP: Debian's gpg program in its own temporary home."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from batches.openpgp_keys import gnupg_home


def gnupg_required() -> None:
    """Debian's gnupg (gpg): missing, these tests skip, or fail in CI."""
    if shutil.which("gpg") and shutil.which("gpgconf"):
        return
    message = "GnuPG (gpg) is not installed: apt-get install gnupg"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class ClientGpg:
    """The gpg a client runs, on a key ring of its own."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def run(self, *args: str, check: bool = True, input: bytes | None = None):
        return subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--yes", *args],
            capture_output=True,
            check=check,
            input=input,
        )

    def new_key(self, uid: str, algo: str = "future-default", usage: str = "default") -> str:
        """A key pair without passphrase; returns its fingerprint.

        An RSA key gets an encryption subkey of the same size, as gpg's own RSA keys have.
        """
        self.run("--passphrase", "", "--quick-gen-key", uid, algo, usage, "never")
        listing = self.run("--with-colons", "--list-keys", uid).stdout.decode()
        fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))
        if algo.startswith("rsa"):
            self.run("--passphrase", "", "--quick-add-key", fpr, algo, "encr", "never")
        return fpr

    def export(self, uid: str, *, secret: bool = False) -> str:
        command = "--export-secret-keys" if secret else "--export"
        args = ["--pinentry-mode", "loopback", "--passphrase", ""] if secret else []
        return self.run(*args, "--armor", command, uid).stdout.decode()


@contextmanager
def client_gpg_home(prefix: str) -> Iterator[ClientGpg]:
    """A client's gpg on a fresh key ring, its agent stopped and the ring deleted after."""
    gnupg_required()
    # Under /tmp, short: gpg-agent's socket paths are limited to about 100 characters.
    home = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield ClientGpg(home)
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def client_gpg():
    with client_gpg_home("client-gpg-") as gpg:
        yield gpg


def decrypt_with(private_armoured: str, source, output: Path) -> None:
    """Decrypt the OpenPGP message ``source`` with this private key into ``output``, as a
    check of a stored key only: neither integrity protection nor signatures are judged here
    (batches/openpgp_decryption.py does that for batch files)."""
    with gnupg_home() as gpg:
        gpg.import_keys(private_armoured)
        result = gpg.decrypt_file(source, output=str(output), always_trust=True)
        assert result.ok, result.status
