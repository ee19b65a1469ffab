"""The SFTP gateway's host key (settings.SFTP_HOST_KEY) and the fingerprint clients pin."""

import io

import paramiko
from django.conf import settings

from batches.gateway.public_keys import blob_fingerprint


def sftp_host_key() -> paramiko.Ed25519Key:
    return paramiko.Ed25519Key.from_private_key(io.StringIO(settings.SFTP_HOST_KEY))


def sftp_host_key_fingerprint() -> str:
    """SHA256:..., as `ssh-keygen -lf` and the OpenSSH client print it."""
    return blob_fingerprint(sftp_host_key().asbytes())
