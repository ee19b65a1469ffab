"""The batch storage on a real SFTP server: the inbox, the ingest and the outbox, end to end.

STORAGES["batches"] is django-storages' SFTPStorage talking to an SFTP server on loopback
(tests/batches/sftp_server.py, paramiko's server classes over a temporary folder), configured
the way production would be:

    "BACKEND": "storages.backends.sftpstorage.SFTPStorage",
    "OPTIONS": {
        "host": "127.0.0.1",
        "root_path": "/batches",
        "known_host_file": "<a known_hosts file holding the server's key>",
        "params": {"port": ..., "username": ..., "password": ...,
                   "look_for_keys": False, "allow_agent": False, "timeout": 10},
    }

`params` goes to paramiko's SSHClient.connect as is. SFTPStorage (django-storages 1.14.6)
loads `known_host_file` (default ~/.ssh/known_hosts) and then always sets AutoAddPolicy: a host
missing from the file is trusted and *appended to that file*; a host present with another key
is refused (BadHostKeyException). So production must pin the server's key in known_host_file,
and these tests do the same, with their own file, so no test ever writes ~/.ssh/known_hosts.
"""

import csv
import io
import tempfile
import time
from pathlib import Path

import paramiko
import py7zr
import pytest

from batches.file_storage import batch_storage
from batches.inbox import inbox_poll
from batches.ingest import batch_ingest
from batches.models import Batch, InboxSighting
from notifications.models import Notification
from tests.batches.conftest import PASSWORD, line, seven_zip
from tests.batches.sftp_server import SFTPTestServer
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db

SFTP_USER, SFTP_PASSWORD = "kokatto", "sftp-pass-for-tests"
ROOT_PATH = "/batches"


@pytest.fixture
def sftp_server(tmp_path):
    """The server; at the end, every client must have hung up before it stops."""
    with SFTPTestServer(tmp_path / "sftp", username=SFTP_USER, password=SFTP_PASSWORD) as server:
        yield server
        deadline = time.monotonic() + 5
        while server.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.open_connections == 0, "a test left an SFTP connection open"


def sftp_storage_settings(server: SFTPTestServer, known_hosts: Path, password=SFTP_PASSWORD):
    return {
        "BACKEND": "storages.backends.sftpstorage.SFTPStorage",
        "OPTIONS": {
            "host": "127.0.0.1",
            "root_path": ROOT_PATH,
            "known_host_file": str(known_hosts),
            "params": {
                "port": server.port,
                "username": SFTP_USER,
                "password": password,
                "look_for_keys": False,
                "allow_agent": False,
                "timeout": 10,
            },
        },
    }


@pytest.fixture
def use_sftp_storage(settings, sftp_server, tmp_path):
    """use_sftp_storage(known_hosts=None, password=...) points STORAGES["batches"] at the
    server; returns the server's folder behind ROOT_PATH. The storage's connection is closed
    at the end (the settings fixture forgets the instance without closing it)."""

    def use(known_hosts: Path | None = None, password: str = SFTP_PASSWORD) -> Path:
        known_hosts = known_hosts or sftp_server.write_known_hosts(tmp_path / "known_hosts")
        settings.STORAGES = {
            **settings.STORAGES,
            "batches": sftp_storage_settings(sftp_server, known_hosts, password),
        }
        settings.BATCH_WORK_DIR = str(tmp_path / "work")
        served = sftp_server.root / ROOT_PATH.lstrip("/")
        served.mkdir(exist_ok=True)
        return served

    yield use
    batch_storage().close()


@pytest.fixture
def sftp_home(use_sftp_storage) -> Path:
    return use_sftp_storage()


def unpack_7z(data: bytes) -> str:
    with (
        tempfile.TemporaryDirectory() as unpacked,
        py7zr.SevenZipFile(io.BytesIO(data), password=PASSWORD) as archive,
    ):
        archive.extractall(path=unpacked)
        [member] = Path(unpacked).iterdir()
        return member.read_text()


def test_a_batch_uploaded_over_sftp_is_taken_ingested_and_answered_in_the_outbox(
    sftp_home, sftp_server, batch_client, tmp_path
):
    text = "".join(line(f"SFTP-{n}") + "\n" for n in (1, 2)) + line("BAD", balance="x") + "\n"
    original = seven_zip(tmp_path / "reminders.7z", text).read_bytes()
    with sftp_server.client() as uploader:
        uploader.mkdir(f"{ROOT_PATH}/8002")
        uploader.mkdir(f"{ROOT_PATH}/8002/inbox")
        uploader.putfo(io.BytesIO(original), f"{ROOT_PATH}/8002/inbox/reminders.7z")

    assert inbox_poll(batch_client) == []  # the first look only notes size and time
    assert InboxSighting.objects.get().name == "reminders.7z"
    [batch] = inbox_poll(batch_client)
    status = batch_ingest(batch_id=batch.pk)

    batch.refresh_from_db()
    assert (status, batch.lines_read, batch.lines_accepted, batch.lines_rejected) == (
        "DONE",
        3,
        2,
        1,
    )
    assert batch.size_bytes == len(original)
    assert sorted(Notification.objects.filter(batch=batch).values_list("reference", flat=True)) == [
        "SFTP-1",
        "SFTP-2",
    ]
    # On the server's own disk: the result in the outbox, the original archived, the inbox empty.
    home = sftp_home / "8002"
    assert batch.result_path == "8002/outbox/reminders.result.7z"
    result = unpack_7z((home / "outbox" / "reminders.result.7z").read_bytes())
    rows = list(csv.reader(io.StringIO(result)))
    assert [row[:4] for row in rows] == [
        ["line", "clientNotifRefId", "status", "code"],
        ["1", "SFTP-1", "ACCEPTED", ""],
        ["2", "SFTP-2", "ACCEPTED", ""],
        ["3", "BAD", "REJECTED", "VALIDATION_ERROR"],
    ]
    assert rows[3][4].startswith("balance:")
    assert (home / "archive" / f"{batch.pk}-reminders.7z").read_bytes() == original
    assert list((home / "inbox").iterdir()) == []
    assert not InboxSighting.objects.exists()
    # The storage kept one connection for the polls and the ingest: the uploader's login and
    # the storage's are the only two.
    assert sftp_server.logins == 2


def test_a_file_still_being_written_over_sftp_is_not_taken_until_it_stops_changing(
    sftp_home, sftp_server, batch_client, tmp_path
):
    archive = seven_zip(tmp_path / "slow.7z", line("SLOW-1") + "\n").read_bytes()
    half = len(archive) // 2
    with sftp_server.client() as uploader:
        uploader.mkdir(f"{ROOT_PATH}/8002")
        uploader.mkdir(f"{ROOT_PATH}/8002/inbox")
        with uploader.open(f"{ROOT_PATH}/8002/inbox/slow.7z", "wb") as remote:
            remote.write(archive[:half])
            remote.flush()
            assert inbox_poll(batch_client) == []
            remote.write(archive[half:])
            remote.flush()
            assert inbox_poll(batch_client) == []  # grew since the first look

    [batch] = inbox_poll(batch_client)

    assert batch.size_bytes == len(archive)
    assert batch_ingest(batch_id=batch.pk) == "DONE"
    assert Notification.objects.get().reference == "SLOW-1"


def test_a_client_without_a_home_on_the_sftp_server_is_no_error(sftp_home):
    client = ClientFactory(client_id="8009")

    assert inbox_poll(client) == []
    assert not Batch.objects.exists()


def test_the_storage_refuses_a_server_whose_host_key_is_not_the_pinned_one(
    use_sftp_storage, sftp_server, batch_client, tmp_path
):
    impostor_key = paramiko.ECDSAKey.generate()
    known_hosts = sftp_server.write_known_hosts(tmp_path / "known_hosts", key=impostor_key)
    use_sftp_storage(known_hosts=known_hosts)

    with pytest.raises(paramiko.BadHostKeyException):
        inbox_poll(batch_client)

    assert sftp_server.logins == 0
    # The pinned key stays as it was: a mismatch is never "learned".
    assert paramiko.HostKeys(str(known_hosts)).lookup(f"[127.0.0.1]:{sftp_server.port}") == {
        impostor_key.get_name(): impostor_key
    }


def test_a_wrong_sftp_password_is_an_authentication_error(
    use_sftp_storage, sftp_server, batch_client
):
    use_sftp_storage(password="not-the-password")

    with pytest.raises(paramiko.AuthenticationException):
        inbox_poll(batch_client)

    assert (sftp_server.logins, sftp_server.failed_logins) == (0, 1)


def test_a_symlink_in_an_inbox_on_the_sftp_server_is_refused_and_never_followed(
    sftp_home, batch_client, tmp_path
):
    target = seven_zip(tmp_path / "elsewhere.7z", line("NOT-MINE") + "\n")
    inbox = sftp_home / "8002" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "linked.7z").symlink_to(target)

    assert inbox_poll(batch_client) == []

    [batch] = Batch.objects.all()
    assert (batch.status, batch.failure_code, batch.archived_path) == ("FAILED", "SYMLINK", "")
    assert not (inbox / "linked.7z").is_symlink()
    assert target.exists()
    assert not InboxSighting.objects.exists()
