"""Twenty clients uploading 10 MB batch files to the SFTP gateway at once: sixteen
paramiko clients in threads and four OpenSSH `sftp` processes, over three accounts."""

import concurrent.futures
import hashlib

import paramiko
import py7zr
import pytest
from django.db import connection

from batches.gateway.accounts import gateway_account_create
from batches.ingest import batch_ingest
from batches.models import Batch, BatchStatus, GatewayAction, GatewayEvent
from notifications.models import Notification
from tests.batches.conftest import PASSWORD as BATCH_PASSWORD
from tests.batches.conftest import line, queued
from tests.gateway import test_sftp as sftp_tests
from tests.gateway.conftest import PASSWORD
from tests.gateway.test_sftp import openssh_sftp

# The SFTP tests' gateway on a free loopback port, and a known_hosts file pinning it.
gateway = sftp_tests.gateway
known_hosts = sftp_tests.known_hosts

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    # SQLite's in-memory test database answers concurrent writers "table is locked" at once
    # (its shared cache does not wait); `make test-pg` runs this.
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent database writers"),
]

FILE_BYTES = 10 * 1024 * 1024
PARAMIKO_CLIENTS, OPENSSH_CLIENTS = 16, 4


def ten_megabyte_batch(path, reference: str):
    """A 7z batch of one customer line, stored (not compressed) and AES-encrypted, padded
    to 10 MB with blank lines (which the parser counts and skips): the bytes of a large
    file for the gateway, a quick ingest for the test."""
    padding = (" " * 1023 + "\n").encode()
    text = (line(reference) + "\n").encode() + padding * (FILE_BYTES // len(padding))
    filters = [{"id": py7zr.FILTER_COPY}, {"id": py7zr.FILTER_CRYPTO_AES256_SHA256}]
    with py7zr.SevenZipFile(path, "w", password=BATCH_PASSWORD, filters=filters) as archive:
        archive.writestr(text, "reminders.csv")
    return path


def _paramiko_put(address, username, password, local, remote):
    transport = paramiko.Transport(address)
    try:
        transport.connect(username=username, password=password)
        paramiko.SFTPClient.from_transport(transport).put(str(local), remote)
    finally:
        transport.close()


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_twenty_clients_upload_10_mb_at_once_and_each_file_is_ingested_once(
    gateway, known_hosts, ssh_key, client_8002, tmp_path, broker
):
    usernames = ["acme-upload"]  # its key for OpenSSH, its password for paramiko
    for number in (2, 3):
        gateway_account_create(
            client=client_8002, username=f"acme-upload-{number}", password=PASSWORD
        )
        usernames.append(f"acme-upload-{number}")
    files = {
        f"file-{index:02}.7z": ten_megabyte_batch(tmp_path / f"{index}.7z", f"BIG-{index:02}")
        for index in range(PARAMIKO_CLIENTS + OPENSSH_CLIENTS)
    }
    assert all(path.stat().st_size >= FILE_BYTES for path in files.values())

    with concurrent.futures.ThreadPoolExecutor(len(files)) as pool:
        uploads = []
        for index, (name, path) in enumerate(files.items()):
            if index < OPENSSH_CLIENTS:
                command = f"put {path} /inbox/{name}\n"
                uploads.append(pool.submit(openssh_sftp, gateway, known_hosts, ssh_key, command))
            else:
                username = usernames[index % len(usernames)]
                address = gateway.address
                args = (address, username, PASSWORD, path, f"/inbox/{name}")
                uploads.append(pool.submit(_paramiko_put, *args))
        for upload in uploads:
            finished = upload.result(timeout=120)
            assert finished is None or finished.returncode == 0, finished.stderr

    batches = {batch.file_name: batch for batch in Batch.objects.all()}
    assert sorted(batches) == sorted(files)
    assert all(batches[name].size_bytes == path.stat().st_size for name, path in files.items())
    uploaded = GatewayEvent.objects.filter(action=GatewayAction.UPLOAD, outcome="ok")
    assert sorted(uploaded.values_list("file_name", "sha256")) == sorted(
        (f"/inbox/{name}", _sha256(path)) for name, path in files.items()
    )
    # Each upload's close queued its batch's ingest, once; running the queue ingests them.
    tasks = queued(broker)
    assert sorted(tasks) == sorted(
        ("batches.tasks.ingest_batch", (batch.pk,)) for batch in batches.values()
    )
    for _, (batch_id,) in tasks:
        assert batch_ingest(batch_id=batch_id) == BatchStatus.DONE
    assert sorted(Notification.objects.values_list("reference", flat=True)) == [
        f"BIG-{index:02}" for index in range(len(files))
    ]
    assert not gateway.limits.open_sessions("acme-upload")
