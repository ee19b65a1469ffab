"""Fixtures for the file-transfer gateway: SSH keys made by ssh-keygen, and accounts."""

import io
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import py7zr
import pytest
from django.db import OperationalError

from batches.gateway.accounts import gateway_account_create
from batches.gateway.home import ClientHome
from batches.models import GatewayAccount
from tests.batches import conftest as batch_fixtures
from tests.batches.conftest import line, seven_zip

PASSWORD = "gateway-pass-8002"

# The batch tests' fixtures: a fresh local batch storage, client 8002 with its 7z password.
batch_home = batch_fixtures.batch_home
batch_client = batch_fixtures.batch_client


def openssh_required() -> None:
    """Debian's openssh-client (sftp, ssh-keygen): missing, these tests skip, or fail in CI."""
    if shutil.which("sftp") and shutil.which("ssh-keygen"):
        return
    message = "OpenSSH's client (sftp, ssh-keygen) is not installed: apt-get install openssh-client"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def ssh_keygen(folder, name, key_type="ed25519", bits=None):
    """A new key pair made by OpenSSH's ssh-keygen; returns the private key's path."""
    openssh_required()
    path = folder / name
    command = ["ssh-keygen", "-q", "-N", "", "-C", f"{name}@test", "-t", key_type, "-f", str(path)]
    subprocess.run(command + (["-b", str(bits)] if bits else []), check=True)
    return path


@pytest.fixture
def ssh_key(tmp_path):
    return ssh_keygen(tmp_path, "client-key")


@pytest.fixture
def account_8002(client_8002, ssh_key):
    return gateway_account_create(
        client=client_8002,
        username="acme-upload",
        password=PASSWORD,
        public_keys=[ssh_key.with_suffix(".pub").read_text()],
    )


@pytest.fixture
def home_8002(batch_home, batch_client, account_8002):
    """The client 8002's gateway home over a fresh local batch storage."""
    return ClientHome(account_8002)


def put(home, path: str, content: bytes, chunk: int = 32768):
    """Upload `content` through the home as a client would: open, write in order, close."""
    upload = home.upload_open(path)
    for offset in range(0, len(content), chunk):
        upload.write(content[offset : offset + chunk], offset)
    return upload.close()


def unpacked_result(data: bytes) -> str:
    """The CSV inside a result file (a 7z with the client's batch password)."""
    with (
        tempfile.TemporaryDirectory() as folder,
        py7zr.SevenZipFile(io.BytesIO(data), password=batch_fixtures.PASSWORD) as archive,
    ):
        archive.extractall(path=folder)
        [member] = Path(folder).iterdir()
        return member.read_text()


REFUSED_LOGINS = ["wrong password", "unknown user", "disabled", "other address"]


def refused_login(account, case: str) -> dict:
    """Make `case` true of `account`; returns the login fields (over its password) to try."""
    login = {"username": account.username, "password": PASSWORD}
    if case == "wrong password":
        login["password"] = "guess"
    elif case == "unknown user":
        login["username"] = "nobody"
    elif case == "disabled":
        GatewayAccount.objects.filter(pk=account.pk).update(enabled=False)
    elif case == "other address":
        GatewayAccount.objects.filter(pk=account.pk).update(allowed_networks="10.0.0.0/8")
    return login


def seven_zip_batch(tmp_path, name="may.7z", reference="REF-1"):
    """A real 7z batch of one line for client 8002, encrypted with its batch password."""
    return seven_zip(tmp_path / name, line(reference) + "\n")


def inbox_names(batch_home):
    """The names in client 8002's inbox folder of the batch storage, hidden ones too."""
    folder = batch_home / "8002" / "inbox"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def wait_for(condition, seconds=5.0):
    """Whether `condition()` comes true within `seconds` (the gateways work in threads).

    On SQLite's shared-cache test database a read while a gateway thread writes fails at
    once with "table is locked" instead of waiting: that poll counts as not yet.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return True
        except OperationalError as error:
            if "locked" not in str(error):
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
