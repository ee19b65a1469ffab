"""The SFTP gateway driven by real clients: OpenSSH's sftp (key) and paramiko (password)."""

import os
import socket
import subprocess
import sys
import threading

import paramiko
import pytest

from batches.gateway.accounts import gateway_account_create
from batches.gateway.defender import gateway_bans_lift
from batches.gateway.sftp import SftpGateway
from batches.ingest import batch_ingest
from batches.models import (
    Batch,
    BatchStatus,
    GatewayAccount,
    GatewayLoginFailure,
    GatewayScore,
)
from tests.gateway.conftest import (
    PASSWORD,
    REFUSED_LOGINS,
    inbox_names,
    refused_login,
    seven_zip_batch,
    ssh_keygen,
    unpacked_result,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def gateway(batch_home, batch_client, account_8002):
    server = SftpGateway("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def known_hosts(tmp_path, gateway, settings):
    """A known_hosts file pinning the gateway's host key, as a client who checked it."""
    host, port = gateway.address
    path = tmp_path / "known_hosts"
    path.write_text(
        f"[{host}]:{port} {gateway.host_key.get_name()} {gateway.host_key.get_base64()}\n"
    )
    return path


def openssh_sftp(gateway, known_hosts, key, commands: str, user="acme-upload"):
    """Run OpenSSH's `sftp -b -` with `commands`; returns the finished process."""
    return subprocess.run(
        openssh_sftp_command(gateway, known_hosts, key, user),
        input=commands,
        capture_output=True,
        text=True,
        timeout=30,
    )


def openssh_sftp_command(gateway, known_hosts, key, user="acme-upload") -> list[str]:
    """OpenSSH's `sftp -b -` (commands on its stdin) logging in to the gateway by `key`."""
    host, port = gateway.address
    return [
        "sftp",
        "-b",
        "-",
        "-P",
        str(port),
        "-i",
        str(key),
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        f"{user}@{host}",
    ]


def paramiko_login(gateway, username="acme-upload", password=PASSWORD):
    transport = paramiko.Transport(gateway.address)
    transport.connect(username=username, password=password)
    return transport


def test_openssh_sftp_with_a_key_uploads_a_batch_received_at_once_and_gets_its_result(
    gateway, known_hosts, ssh_key, tmp_path
):
    batch_file = seven_zip_batch(tmp_path)
    put = openssh_sftp(
        gateway, known_hosts, ssh_key, f"put {batch_file} /inbox/may.7z\nls /inbox\n"
    )
    assert put.returncode == 0, put.stderr
    batch = Batch.objects.get()  # no poll ran: the upload's close received it
    assert (batch.file_name, batch.size_bytes) == ("may.7z", batch_file.stat().st_size)

    assert batch_ingest(batch_id=batch.pk) == "DONE"
    result = tmp_path / "result.7z"
    get = openssh_sftp(gateway, known_hosts, ssh_key, f"get /outbox/may.result.7z {result}\n")
    assert get.returncode == 0, get.stderr
    assert "REF-1" in unpacked_result(result.read_bytes())


def test_paramiko_with_a_password_uploads_lists_and_downloads(gateway, tmp_path, batch_home):
    transport = paramiko_login(gateway)
    sftp = paramiko.SFTPClient.from_transport(transport)
    sftp.put(str(seven_zip_batch(tmp_path)), "/inbox/june.7z")
    assert sftp.listdir("/") == ["inbox", "outbox"]
    assert sftp.listdir("/inbox") == ["june.7z"]
    batch = Batch.objects.get()
    batch_ingest(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE
    with sftp.open("/outbox/june.result.7z") as result:
        assert "REF-1" in unpacked_result(result.read())
    transport.close()


def test_a_wrong_key_is_refused(gateway, known_hosts, tmp_path):
    stranger = ssh_keygen(tmp_path, "stranger")
    finished = openssh_sftp(gateway, known_hosts, stranger, "ls /\n")
    assert finished.returncode != 0 and "Permission denied" in finished.stderr


@pytest.mark.parametrize("case", REFUSED_LOGINS)
def test_refused_password_logins(gateway, account_8002, case):
    login = refused_login(account_8002, case)
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_login(gateway, **login)


def test_repeated_wrong_passwords_ban_the_login_until_an_operator_lifts_the_ban(
    gateway, settings, operator_user
):
    settings.GATEWAY_BAN_THRESHOLD = 3
    for _ in range(3):
        with pytest.raises(paramiko.AuthenticationException):
            paramiko_login(gateway, password="not the password")

    with pytest.raises(paramiko.AuthenticationException):
        paramiko_login(gateway)  # the right password, while banned
    assert GatewayLoginFailure.objects.count() == 3  # an attempt while banned adds nothing

    gateway_bans_lift(GatewayScore.objects.all(), by=operator_user)
    paramiko_login(gateway).close()


def test_a_disabled_account_is_refused_with_its_key(gateway, known_hosts, ssh_key, account_8002):
    GatewayAccount.objects.filter(pk=account_8002.pk).update(enabled=False)
    finished = openssh_sftp(gateway, known_hosts, ssh_key, "ls /\n")
    assert finished.returncode != 0


@pytest.mark.parametrize(
    "attempt",
    [
        lambda sftp: sftp.listdir("/../8003/inbox"),
        lambda sftp: sftp.listdir("/8003/outbox"),
        lambda sftp: sftp.open("../../etc/passwd"),
        lambda sftp: sftp.open("/inbox/../../8003/outbox/theirs.csv"),
        lambda sftp: sftp.open("/outbox/x.csv", "w"),
        lambda sftp: sftp.symlink("/etc/passwd", "/inbox/link.7z"),
        lambda sftp: sftp.mkdir("/inbox/sub"),
        lambda sftp: sftp.open("/inbox/.upload-hidden", "w"),
    ],
)
def test_everything_outside_the_home_is_refused(gateway, batch_home, client_8003, attempt):
    other_outbox = batch_home / "8003" / "outbox"
    other_outbox.mkdir(parents=True)
    (other_outbox / "theirs.csv").write_text("not yours")
    transport = paramiko_login(gateway)
    sftp = paramiko.SFTPClient.from_transport(transport)
    with pytest.raises(OSError):
        attempt(sftp)
    transport.close()
    assert inbox_names(batch_home) == []


def test_an_upload_cut_off_never_appears_and_is_never_ingested(gateway, batch_home):
    transport = paramiko_login(gateway)
    sftp = paramiko.SFTPClient.from_transport(transport)
    upload = sftp.open("/inbox/cut.7z", "w")
    upload.write(b"x" * 100_000)
    upload.flush()
    assert wait_for(lambda: any(n.startswith(".upload-") for n in inbox_names(batch_home)))
    transport.close()  # the client dies mid-transfer: no CLOSE is ever sent
    assert wait_for(lambda: inbox_names(batch_home) == [])
    assert not Batch.objects.exists()


def test_the_rename_at_end_client_is_ingested_once(gateway, batch_home, tmp_path):
    transport = paramiko_login(gateway)
    sftp = paramiko.SFTPClient.from_transport(transport)
    sftp.put(str(seven_zip_batch(tmp_path)), "/inbox/x.7z.filepart")
    assert not Batch.objects.exists()
    sftp.posix_rename("/inbox/x.7z.filepart", "/inbox/x.7z")
    transport.close()
    batch = Batch.objects.get()
    assert batch_ingest(batch_id=batch.pk) == "DONE"
    assert Batch.objects.count() == 1


def test_only_the_sftp_subsystem_may_be_opened(gateway):
    transport = paramiko_login(gateway)
    with pytest.raises(paramiko.SSHException):
        transport.open_session().exec_command("id")
    with pytest.raises(paramiko.SSHException):
        transport.open_session().invoke_shell()
    with pytest.raises(paramiko.ChannelException):
        transport.open_channel("direct-tcpip", ("127.0.0.1", 22), ("127.0.0.1", 5555))
    transport.close()


def test_another_clients_account_sees_only_its_own_home(gateway, client_8003, batch_home, tmp_path):
    gateway_account_create(client=client_8003, username="other", password="other-pass")
    transport = paramiko_login(gateway)
    paramiko.SFTPClient.from_transport(transport).put(str(seven_zip_batch(tmp_path)), "/inbox/a.7z")
    transport.close()
    other = paramiko_login(gateway, username="other", password="other-pass")
    assert paramiko.SFTPClient.from_transport(other).listdir("/inbox") == []
    other.close()


def test_the_command_prints_the_host_key_it_serves_with(tmp_path):
    key_file = ssh_keygen(tmp_path, "host")
    env = {
        **os.environ,
        "KOKATTO_VAR_DIR": str(tmp_path / "var"),
        "SFTP_HOST_KEY": key_file.read_text(),
    }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_sftp_gateway", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        first_line = process.stdout.readline()
        transport = paramiko.Transport(("127.0.0.1", port))
        transport.start_client()
        served = transport.get_remote_server_key()
        transport.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
    printed = subprocess.run(
        ["ssh-keygen", "-lf", str(key_file)], capture_output=True, text=True
    ).stdout.split()[1]
    assert f"127.0.0.1:{port}" in first_line and printed in first_line
    assert served.get_base64() in key_file.with_suffix(".pub").read_text()


def test_a_silent_session_is_closed_after_the_idle_timeout(gateway, settings):
    settings.SFTP_IDLE_TIMEOUT = 1
    transport = paramiko_login(gateway)
    paramiko.SFTPClient.from_transport(transport).listdir("/")
    assert wait_for(lambda: not transport.is_active(), seconds=4)


def test_a_connection_that_never_logs_in_is_closed_after_the_login_timeout(gateway, settings):
    settings.SFTP_LOGIN_TIMEOUT = 1
    transport = paramiko.Transport(gateway.address)
    transport.start_client()  # the key exchange, then no login at all
    assert wait_for(lambda: not transport.is_active(), seconds=4)
