"""Fixtures for the file-transfer gateway: SSH keys made by ssh-keygen, and accounts."""

import subprocess

import pytest

from batches.gateway.accounts import gateway_account_create

PASSWORD = "gateway-pass-8002"


def ssh_keygen(folder, name, key_type="ed25519", bits=None):
    """A new key pair made by OpenSSH's ssh-keygen; returns the private key's path."""
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
