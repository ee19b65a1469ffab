"""The FTPS gateway driven by real clients: Python's ftplib.FTP_TLS and curl --ssl-reqd."""

# ruff: noqa: S321 (ftplib is the FTP client these tests drive the gateway with)

import contextlib
import ftplib
import io
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from contextlib import contextmanager

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from batches.gateway.accounts import gateway_account_create
from batches.gateway.defender import gateway_bans_lift
from batches.gateway.ftps import FtpsGateway, passive_ports
from batches.ingest import batch_ingest
from batches.models import (
    Batch,
    BatchStatus,
    GatewayAccount,
    GatewayAction,
    GatewayEvent,
    GatewayLoginFailure,
    GatewayOutcome,
    GatewayScore,
)
from kokatto_site.local_secrets import new_ec_private_key_pem, self_signed_pem
from tests.gateway.conftest import (
    PASSWORD,
    REFUSED_LOGINS,
    inbox_names,
    refused_login,
    seven_zip_batch,
    unpacked_result,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def running(gateway: FtpsGateway):
    thread = threading.Thread(target=gateway.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def module_gateway():
    """One gateway for the module, with the default settings (TLS required)."""
    server = FtpsGateway("127.0.0.1", 0)
    thread = running(server)
    yield server
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def gateway(module_gateway, batch_home, batch_client, account_8002):
    GatewayAccount.objects.filter(pk=account_8002.pk).update(ftps_allowed=True)
    return module_gateway


@pytest.fixture
def ftps_account(batch_home, batch_client, account_8002):
    """Client 8002's account, allowed FTPS, for tests starting a gateway of their own (it
    reads the settings when it starts)."""
    GatewayAccount.objects.filter(pk=account_8002.pk).update(ftps_allowed=True)
    return account_8002


@pytest.fixture
def certificate_file(tmp_path):
    """The gateway's certificate, as a client who pinned it keeps it."""
    path = tmp_path / "gateway.pem"
    path.write_text(django_settings.FTPS_CERTIFICATE)
    return path


def tls_context(**options) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=django_settings.FTPS_CERTIFICATE)
    for name, value in options.items():
        setattr(context, name, value)
    return context


def ftps_login(gateway, username="acme-upload", password=PASSWORD, prot_p=True):
    """ftplib over explicit TLS, checking the certificate (and its 127.0.0.1 SAN)."""
    ftp = ftplib.FTP_TLS(context=tls_context(), timeout=30)
    ftp.connect(*gateway.address)
    ftp.login(username, password)  # AUTH TLS first
    if prot_p:
        ftp.prot_p()
    return ftp


def store(ftp, path: str, content: bytes) -> str:
    return ftp.storbinary(f"STOR {path}", io.BytesIO(content))


def fetch(ftp, path: str) -> bytes:
    chunks = []
    ftp.retrbinary(f"RETR {path}", chunks.append)
    return b"".join(chunks)


def curl_required() -> str:
    """Debian's curl: missing, these tests skip (in CI, where CI is set, they fail)."""
    path = shutil.which("curl")
    if path is None:
        message = "curl is not installed: apt-get install curl"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextmanager
def started(gateway: FtpsGateway):
    thread = running(gateway)
    try:
        yield gateway
    finally:
        gateway.shutdown()
        thread.join(timeout=10)


def test_ftplib_uploads_a_batch_received_at_once_and_downloads_its_result(gateway, tmp_path):
    batch_file = seven_zip_batch(tmp_path)
    ftp = ftps_login(gateway)
    assert store(ftp, "/inbox/may.7z", batch_file.read_bytes()).startswith("226")
    batch = Batch.objects.get()  # no poll ran: the end of the upload received it
    assert (batch.file_name, batch.size_bytes) == ("may.7z", batch_file.stat().st_size)
    assert ftp.nlst("/") == ["inbox", "outbox"]
    assert ftp.nlst("/inbox") == ["may.7z"]

    assert batch_ingest(batch_id=batch.pk) == "DONE"
    ftp.cwd("/outbox")
    assert "REF-1" in unpacked_result(fetch(ftp, "may.result.7z"))
    ftp.quit()

    events = GatewayEvent.objects.filter(protocol="ftps")
    assert set(events.values_list("action", "outcome")) == {
        (GatewayAction.LOGIN, GatewayOutcome.OK),
        (GatewayAction.UPLOAD, GatewayOutcome.OK),
        (GatewayAction.DOWNLOAD, GatewayOutcome.OK),
    }
    upload = events.get(action=GatewayAction.UPLOAD)
    assert (upload.file_name, upload.size_bytes) == ("/inbox/may.7z", batch.size_bytes)


def test_curl_with_the_pinned_certificate_uploads_and_downloads(
    gateway, tmp_path, certificate_file
):
    curl = curl_required()
    host, port = gateway.address
    base = f"ftp://acme-upload:{PASSWORD}@{host}:{port}"
    pinned = [curl, "--silent", "--show-error", "--ssl-reqd", "--cacert", str(certificate_file)]
    batch_file = seven_zip_batch(tmp_path, "june.7z")

    put = subprocess.run([*pinned, "-T", str(batch_file), f"{base}/inbox/"], capture_output=True)
    assert put.returncode == 0, put.stderr
    batch = Batch.objects.get()
    assert batch.file_name == "june.7z"
    batch_ingest(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE

    result = tmp_path / "june.result.7z"
    get = subprocess.run(
        [*pinned, "-o", str(result), f"{base}/outbox/june.result.7z"], capture_output=True
    )
    assert get.returncode == 0, get.stderr
    assert "REF-1" in unpacked_result(result.read_bytes())


def test_curl_refuses_a_gateway_whose_certificate_is_not_the_pinned_one(gateway, tmp_path):
    curl = curl_required()
    host, port = gateway.address
    other = tmp_path / "other.pem"
    other.write_text(self_signed_pem(new_ec_private_key_pem()))
    listed = subprocess.run(
        [curl, "-sS", "--ssl-reqd", "--cacert", str(other), f"ftp://acme-upload:x@{host}:{port}/"],
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 60, listed.stderr  # CURLE_PEER_FAILED_VERIFICATION
    assert not GatewayEvent.objects.exists()  # the password never left the client


def test_plain_ftp_is_refused_before_any_password_is_sent(gateway):
    ftp = ftplib.FTP(timeout=30)
    ftp.connect(*gateway.address)
    with pytest.raises(ftplib.error_perm, match="SSL/TLS required on the control channel"):
        ftp.login("acme-upload", PASSWORD)
    ftp.close()
    assert not GatewayEvent.objects.exists()  # no credential was even checked


def test_plain_ftp_works_when_an_operator_allows_it(settings, ftps_account, tmp_path):
    settings.FTPS_ALLOW_PLAIN_FTP = True
    with started(FtpsGateway("127.0.0.1", 0)) as gateway:
        ftp = ftplib.FTP(timeout=30)
        ftp.connect(*gateway.address)
        ftp.login("acme-upload", PASSWORD)
        store(ftp, "/inbox/legacy.7z", seven_zip_batch(tmp_path).read_bytes())
        ftp.quit()
        ftps_login(gateway).quit()  # TLS is still offered
    assert Batch.objects.get().file_name == "legacy.7z"


def _tls_up_to(gateway, version: ssl.TLSVersion) -> ftplib.FTP_TLS:
    """AUTH TLS from a client willing to speak anything from TLS 1.0 up to `version`."""
    context = tls_context(maximum_version=version)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # the client would; the gateway must not
    ftp = ftplib.FTP_TLS(context=context, timeout=30)
    ftp.connect(*gateway.address)
    ftp.auth()
    return ftp


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_a_tls_1_1_client_is_refused_by_the_gateway_and_tls_1_2_accepted(gateway):
    with pytest.raises(ssl.SSLError, match="TLSV1_ALERT_PROTOCOL_VERSION"):  # the gateway's alert
        _tls_up_to(gateway, ssl.TLSVersion.TLSv1_1)
    ftp = _tls_up_to(gateway, ssl.TLSVersion.TLSv1_2)
    assert ftp.sock.version() == "TLSv1.2"
    ftp.close()


def test_a_data_connection_without_prot_p_is_refused(gateway):
    ftp = ftps_login(gateway, prot_p=False)
    with pytest.raises(ftplib.error_perm, match="SSL/TLS required on the data channel"):
        ftp.nlst("/inbox")
    ftp.sendcmd("PBSZ 0")
    ftp.prot_c()  # asking for a clear data channel explicitly
    with pytest.raises(ftplib.error_perm, match="SSL/TLS required on the data channel"):
        store(ftp, "/inbox/clear.7z", b"in clear")
    ftp.quit()


@pytest.mark.parametrize(
    "attempt",
    [
        lambda ftp: ftp.cwd("/../8003/inbox"),
        lambda ftp: ftp.nlst("/8003/outbox"),
        lambda ftp: fetch(ftp, "../../etc/passwd"),
        lambda ftp: fetch(ftp, "/inbox/../../8003/outbox/theirs.csv"),
        lambda ftp: fetch(ftp, "/outbox/link.csv"),  # a symlink planted in the storage
        lambda ftp: fetch(ftp, "/outbox/..%2f..%2f8003/outbox/theirs.csv"),
        lambda ftp: store(ftp, "/outbox/x.csv", b"x"),
        lambda ftp: store(ftp, "/inbox/.upload-hidden", b"x"),
        lambda ftp: store(ftp, "/x.7z", b"x"),
        lambda ftp: ftp.storbinary("APPE /inbox/a.7z", io.BytesIO(b"x")),
        lambda ftp: ftp.storbinary("STOU /inbox/a.7z", io.BytesIO(b"x")),
        lambda ftp: ftp.mkd("/inbox/sub"),
        lambda ftp: ftp.rmd("/inbox"),
        lambda ftp: ftp.rename("/inbox", "/mine"),
        lambda ftp: ftp.sendcmd("SITE CHMOD 777 /inbox"),
        lambda ftp: ftp.sendcmd("MFMT 20200101000000 /outbox/link.csv"),
    ],
)
def test_everything_outside_the_home_is_refused(gateway, batch_home, client_8003, attempt):
    other_outbox = batch_home / "8003" / "outbox"
    other_outbox.mkdir(parents=True)
    (other_outbox / "theirs.csv").write_text("not yours")
    own_outbox = batch_home / "8002" / "outbox"
    own_outbox.mkdir(parents=True)
    (own_outbox / "link.csv").symlink_to(other_outbox / "theirs.csv")
    ftp = ftps_login(gateway)
    with pytest.raises((ftplib.error_perm, ftplib.error_temp)):
        attempt(ftp)
    ftp.quit()
    assert inbox_names(batch_home) == []
    assert (other_outbox / "theirs.csv").read_text() == "not yours"


def test_another_clients_account_sees_only_its_own_home(gateway, client_8003, tmp_path):
    gateway_account_create(
        client=client_8003, username="other", password="other-pass", protocols=["ftps"]
    )
    ftp = ftps_login(gateway)
    store(ftp, "/inbox/a.7z", seven_zip_batch(tmp_path).read_bytes())
    ftp.quit()
    other = ftps_login(gateway, username="other", password="other-pass")
    assert other.nlst("/inbox") == []
    with pytest.raises(ftplib.error_perm):
        fetch(other, "/inbox/a.7z")  # their own inbox is not readable, and this is not theirs
    other.quit()


@pytest.mark.parametrize("case", [*REFUSED_LOGINS, "sftp only"])
def test_refused_logins(gateway, account_8002, case):
    if case == "sftp only":
        GatewayAccount.objects.filter(pk=account_8002.pk).update(ftps_allowed=False)
        login = {"username": account_8002.username, "password": PASSWORD}
    else:
        login = refused_login(account_8002, case)
    with pytest.raises(ftplib.error_perm, match="530"):
        ftps_login(gateway, **login)
    refused = GatewayEvent.objects.filter(action=GatewayAction.LOGIN_REFUSED).get()
    assert refused.protocol == "ftps"


def test_repeated_wrong_passwords_ban_the_login_until_an_operator_lifts_the_ban(
    gateway, settings, operator_user
):
    settings.GATEWAY_BAN_THRESHOLD = 3
    for _ in range(3):
        with pytest.raises(ftplib.error_perm):
            ftps_login(gateway, password="not the password")

    with pytest.raises(ftplib.error_perm):
        ftps_login(gateway)  # the right password, while banned
    assert GatewayLoginFailure.objects.count() == 3  # an attempt while banned adds nothing
    assert set(GatewayLoginFailure.objects.values_list("protocol", flat=True)) == {"ftps"}

    gateway_bans_lift(GatewayScore.objects.all(), by=operator_user)
    ftps_login(gateway).quit()


def _cut_off(gateway, how: str):
    """Start an upload of /inbox/cut.7z, send part of it, then drop the data connection."""
    ftp = ftps_login(gateway)
    data = ftp.transfercmd("STOR /inbox/cut.7z")
    data.sendall(b"x" * 200_000)
    if how == "reset":
        data.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    data.close()  # no TLS close_notify: the client died, or its connection did
    return ftp


@pytest.mark.parametrize("how", ["closed without close_notify", "reset"])
def test_an_upload_cut_off_never_appears_and_is_never_ingested(gateway, batch_home, how):
    ftp = _cut_off(gateway, how)
    with pytest.raises(ftplib.error_temp, match="426"):
        ftp.voidresp()
    assert wait_for(lambda: inbox_names(batch_home) == [])
    assert ftp.nlst("/inbox") == []
    ftp.quit()
    assert not Batch.objects.exists()
    cut = GatewayEvent.objects.get(action=GatewayAction.UPLOAD)
    assert cut.outcome == GatewayOutcome.FAILED and "cut off" in cut.reason


def test_an_upload_whose_control_connection_dies_is_removed(gateway, batch_home):
    ftp = ftps_login(gateway)
    data = ftp.transfercmd("STOR /inbox/cut.7z")
    data.sendall(b"x" * 100_000)
    ftp.sock.close()  # the whole client goes away mid-transfer
    data.close()
    assert wait_for(lambda: inbox_names(batch_home) == [])
    assert not Batch.objects.exists()


def test_the_rename_at_end_client_is_ingested_once(gateway, tmp_path):
    ftp = ftps_login(gateway)
    store(ftp, "/inbox/x.7z.filepart", seven_zip_batch(tmp_path).read_bytes())
    assert not Batch.objects.exists()
    ftp.rename("/inbox/x.7z.filepart", "/inbox/x.7z")
    ftp.quit()
    batch = Batch.objects.get()
    assert batch.file_name == "x.7z"
    assert batch_ingest(batch_id=batch.pk) == "DONE"
    assert Batch.objects.count() == 1
    assert GatewayEvent.objects.filter(action=GatewayAction.RENAME, protocol="ftps").exists()


def test_an_upload_past_the_size_limit_is_refused_and_removed(gateway, batch_home, settings):
    settings.GATEWAY_MAX_FILE_BYTES = 100_000
    ftp = ftps_login(gateway)
    data = ftp.transfercmd("STOR /inbox/big.7z")
    with contextlib.suppress(OSError):  # the gateway may hang up before all is sent
        data.sendall(b"x" * 1_000_000)
    # The reply first: closing with the gateway's TLS session tickets unread resets the
    # connection, and on a loaded machine the reset can reach the gateway before it has
    # read past the limit (it then says the connection was lost, rightly).
    with pytest.raises(ftplib.error_temp, match="426 Files are limited to 100,000 bytes"):
        ftp.voidresp()
    data.close()
    ftp.quit()
    assert wait_for(lambda: inbox_names(batch_home) == [])
    assert not Batch.objects.exists()
    refused = GatewayEvent.objects.get(action=GatewayAction.UPLOAD)
    assert refused.outcome == GatewayOutcome.FAILED and "limit" in refused.reason


def test_a_file_of_the_inbox_can_be_deleted_before_it_is_picked_up(gateway, batch_home):
    ftp = ftps_login(gateway)
    store(ftp, "/inbox/draft.7z.part", b"draft")
    ftp.delete("/inbox/draft.7z.part")
    assert ftp.nlst("/inbox") == []
    ftp.quit()
    assert GatewayEvent.objects.filter(action=GatewayAction.DELETE, protocol="ftps").exists()


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="20 sessions writing at once: the test SQLite (shared-cache memory) locks tables",
)
def test_twenty_clients_uploading_ten_megabytes_at_once_are_each_ingested_once(
    gateway, batch_home, settings
):
    settings.GATEWAY_MAX_SESSIONS_PER_ACCOUNT = 20  # twenty sessions of one account
    content = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    names = [f"load-{number:02}.7z" for number in range(20)]
    errors = []

    def upload(name):
        try:
            ftp = ftps_login(gateway)
            store(ftp, f"/inbox/{name}", content)
            ftp.quit()
        except Exception as error:  # reported below, with the file's name
            errors.append((name, error))

    threads = [threading.Thread(target=upload, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sorted(Batch.objects.values_list("file_name", flat=True)) == names
    for name in names[:3]:  # every byte landed, in order
        assert (batch_home / "8002" / "inbox" / name).read_bytes() == content
    assert set(Batch.objects.values_list("size_bytes", flat=True)) == {len(content)}
    assert inbox_names(batch_home) == names


def test_the_login_and_idle_timeouts_close_silent_connections(settings, ftps_account):
    settings.FTPS_LOGIN_TIMEOUT = 1
    settings.FTPS_IDLE_TIMEOUT = 2
    with started(FtpsGateway("127.0.0.1", 0)) as gateway:
        silent = ftplib.FTP_TLS(context=tls_context(), timeout=10)
        silent.connect(*gateway.address)  # and never logs in
        logged_in = ftps_login(gateway)
        time.sleep(1.5)
        assert logged_in.nlst("/") == ["inbox", "outbox"]  # within its idle timeout
        with pytest.raises((EOFError, OSError, ftplib.error_temp)):
            silent.login("acme-upload", PASSWORD)
        time.sleep(2.5)
        with pytest.raises((EOFError, OSError, ftplib.error_temp)):
            logged_in.nlst("/")


def test_connections_past_the_limit_per_address_are_refused(settings, ftps_account):
    settings.GATEWAY_MAX_CONNECTIONS_PER_ADDRESS = 2
    with started(FtpsGateway("127.0.0.1", 0)) as gateway:
        first, second = ftps_login(gateway), ftps_login(gateway)
        with pytest.raises(ftplib.error_temp, match="421 Too many connections"):
            ftps_login(gateway)
        first.quit()
        assert _logs_in_within(gateway)  # once the first has gone
        second.quit()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="counts PostgreSQL's backends")
def test_open_connections_after_failed_logins_hold_no_database_connection(gateway):
    def backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    before = backends()
    waiting = []
    for _ in range(5):
        ftp = ftplib.FTP_TLS(context=tls_context(), timeout=30)
        ftp.connect(*gateway.address)
        with pytest.raises(ftplib.error_perm, match="530"):
            ftp.login("acme-upload", "not-the-password")
        waiting.append(ftp)  # still connected, saying nothing

    assert backends() <= before
    for ftp in waiting:
        ftp.close()


def test_sessions_past_the_limit_per_account_are_refused_and_never_scored(gateway, settings):
    settings.GATEWAY_MAX_SESSIONS_PER_ACCOUNT = 1
    settings.GATEWAY_BAN_THRESHOLD = 2
    first = ftps_login(gateway)
    for _ in range(2):
        with pytest.raises(ftplib.error_perm, match="530"):
            ftps_login(gateway)
    refusal = GatewayEvent.objects.get(action=GatewayAction.LOGIN_REFUSED)
    assert refusal.protocol == "ftps"
    assert "too many sessions" in refusal.reason
    first.quit()
    deadline = time.monotonic() + 5
    while True:  # the slot comes back as the first session's thread ends
        try:
            ftps_login(gateway).quit()
            break
        except ftplib.error_perm:
            assert time.monotonic() < deadline, "the session slot was never given back"
            time.sleep(0.1)


def _logs_in_within(gateway, seconds=5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            ftps_login(gateway).quit()
        except ftplib.error_temp:
            time.sleep(0.1)
        else:
            return True
    return False


def test_passive_data_connections_use_the_configured_ports(settings, ftps_account):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        first = probe.getsockname()[1]
    settings.FTPS_PASSIVE_PORTS = f"{first}-{first + 2}"
    settings.FTPS_MASQUERADE_ADDRESS = "127.0.0.1"
    with started(FtpsGateway("127.0.0.1", 0)) as gateway:
        ftp = ftps_login(gateway)
        host, port = ftplib.parse227(ftp.sendcmd("PASV"))
        ftp.quit()
    assert host == "127.0.0.1" and first <= port <= first + 2


@pytest.mark.parametrize("text", ["60000", "60100-60000", "80-90", "a-b", "60000-70000"])
def test_a_passive_port_range_that_is_not_one_stops_the_gateway_at_start(text):
    with pytest.raises(ImproperlyConfigured, match="FTPS_PASSIVE_PORTS"):
        passive_ports(text)


def test_passive_ports_read_as_a_range():
    assert passive_ports("") is None
    assert passive_ports("60000-60002") == [60000, 60001, 60002]
