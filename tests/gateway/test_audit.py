"""The gateway's audit trail: each login and file operation over real SFTP leaves one event,
and the admin shows client staff their own client's events only."""

import hashlib

import paramiko
import pytest

from batches.gateway.accounts import gateway_account_create
from batches.gateway.audit import gateway_event_record
from batches.models import GatewayAction, GatewayEvent, GatewayOutcome
from tests.gateway import test_sftp as sftp_tests
from tests.gateway.conftest import PASSWORD, seven_zip_batch, wait_for
from tests.gateway.test_sftp import paramiko_login

# The SFTP tests' fixture: the real gateway on a loopback port, over a fresh batch storage.
gateway = sftp_tests.gateway

over_sftp = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _session(gateway):
    transport = paramiko_login(gateway)
    return transport, paramiko.SFTPClient.from_transport(transport)


def _event(action) -> GatewayEvent:
    [event] = GatewayEvent.objects.filter(action=action)
    return event


@over_sftp
def test_a_password_login_leaves_one_event_with_account_protocol_and_address(gateway, account_8002):
    transport = paramiko_login(gateway)
    transport.close()

    event = _event(GatewayAction.LOGIN)
    assert (event.client, event.account, event.username) == (
        account_8002.client,
        account_8002,
        "acme-upload",
    )
    assert (event.protocol, event.address, event.outcome) == ("sftp", "127.0.0.1", "ok")


@over_sftp
@pytest.mark.parametrize(
    ("username", "password", "reason", "known"),
    [
        ("acme-upload", "guess", "Wrong password", True),
        ("nobody", PASSWORD, "Unknown user", False),
    ],
)
def test_a_refused_login_leaves_one_refused_event_with_its_reason(
    gateway, account_8002, username, password, reason, known
):
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_login(gateway, username=username, password=password)

    event = _event(GatewayAction.LOGIN_REFUSED)
    assert (event.username, event.outcome, event.reason) == (username, "refused", reason)
    assert (event.account, event.client) == (
        (account_8002, account_8002.client) if known else (None, None)
    )
    assert not GatewayEvent.objects.filter(action=GatewayAction.LOGIN).exists()


@over_sftp
def test_an_upload_leaves_an_event_with_the_files_size_and_sha256(gateway, tmp_path):
    batch_file = seven_zip_batch(tmp_path)
    transport, sftp = _session(gateway)
    sftp.put(str(batch_file), "/inbox/may.7z")
    transport.close()

    event = _event(GatewayAction.UPLOAD)
    content = batch_file.read_bytes()
    assert (event.file_name, event.size_bytes, event.sha256) == (
        "/inbox/may.7z",
        len(content),
        hashlib.sha256(content).hexdigest(),
    )
    assert event.outcome == GatewayOutcome.OK
    assert event.duration_seconds is not None and event.duration_seconds >= 0


@over_sftp
def test_an_upload_cut_off_leaves_a_failed_event(gateway, batch_home):
    transport, sftp = _session(gateway)
    upload = sftp.open("/inbox/cut.7z", "w")
    upload.write(b"x" * 100_000)
    upload.flush()
    transport.close()  # no CLOSE: the session's end cuts the upload off

    assert wait_for(lambda: GatewayEvent.objects.filter(action=GatewayAction.UPLOAD).exists())
    event = _event(GatewayAction.UPLOAD)
    assert (event.file_name, event.outcome) == ("/inbox/cut.7z", "failed")
    assert event.reason.startswith("cut off")


@over_sftp
def test_a_download_of_an_outbox_file_leaves_an_event_with_its_size(gateway, batch_home):
    outbox = batch_home / "8002" / "outbox"
    outbox.mkdir(parents=True)
    (outbox / "may.result.7z").write_bytes(b"r" * 1234)
    transport, sftp = _session(gateway)
    with sftp.open("/outbox/may.result.7z") as result:
        assert result.read() == b"r" * 1234
    transport.close()

    event = _event(GatewayAction.DOWNLOAD)
    assert (event.file_name, event.size_bytes, event.outcome) == (
        "/outbox/may.result.7z",
        1234,
        "ok",
    )


@over_sftp
def test_a_rename_and_a_delete_each_leave_one_event(gateway, tmp_path):
    transport, sftp = _session(gateway)
    sftp.put(str(seven_zip_batch(tmp_path)), "/inbox/x.7z.filepart")
    sftp.posix_rename("/inbox/x.7z.filepart", "/inbox/y.7z.filepart")
    sftp.remove("/inbox/y.7z.filepart")
    transport.close()

    assert _event(GatewayAction.RENAME).file_name == "/inbox/x.7z.filepart -> /inbox/y.7z.filepart"
    deleted = _event(GatewayAction.DELETE)
    assert (deleted.file_name, deleted.outcome) == ("/inbox/y.7z.filepart", "ok")


@over_sftp
def test_an_over_long_file_name_is_stored_cut_to_its_column(gateway, tmp_path):
    old, new = "a" * 240 + ".part", "b" * 240 + ".part"
    transport, sftp = _session(gateway)
    sftp.put(str(seven_zip_batch(tmp_path)), f"/inbox/{old}")
    sftp.posix_rename(f"/inbox/{old}", f"/inbox/{new}")
    transport.close()

    stored = _event(GatewayAction.RENAME).file_name
    assert len(stored) == GatewayEvent._meta.get_field("file_name").max_length
    assert stored == f"/inbox/{old} -> /inbox/{new}"[: len(stored)]


@over_sftp
def test_an_over_long_username_is_stored_cut_to_its_column(gateway):
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_login(gateway, username="u" * 300, password="guess")

    assert _event(GatewayAction.LOGIN_REFUSED).username == "u" * 150


@pytest.fixture
def events_of_8002_and_8003(client_8002, client_8003):
    for client, username in ((client_8002, "acme-8002"), (client_8003, "pembiayaan-8003")):
        account = gateway_account_create(client=client, username=username, password="p-" * 8)
        gateway_event_record(
            action=GatewayAction.UPLOAD,
            protocol="sftp",
            address="203.0.113.5",
            username=username,
            account=account,
            file_name=f"/inbox/{username}.7z",
            size=10,
        )
    gateway_event_record(
        action=GatewayAction.LOGIN_REFUSED,
        protocol="sftp",
        address="203.0.113.9",
        username="stranger",
        outcome=GatewayOutcome.REFUSED,
        reason="Unknown user",
    )


def test_client_staff_see_their_own_clients_events_only(staff_client, events_of_8002_and_8003):
    response = staff_client.get("/admin/batches/gatewayevent/")

    assert response.status_code == 200
    assert [event.username for event in response.context["cl"].result_list] == ["acme-8002"]
    page = response.content.decode()
    assert "/inbox/acme-8002.7z" in page
    assert "pembiayaan-8003" not in page and "stranger" not in page
    other = GatewayEvent.objects.get(username="pembiayaan-8003")
    assert staff_client.get(f"/admin/batches/gatewayevent/{other.pk}/change/").status_code == 302


def test_operators_see_every_event_and_change_none(operator_client, events_of_8002_and_8003):
    response = operator_client.get("/admin/batches/gatewayevent/?action__exact=UPLOAD")

    assert response.status_code == 200
    assert {event.username for event in response.context["cl"].result_list} == {
        "acme-8002",
        "pembiayaan-8003",
    }
    event = GatewayEvent.objects.get(username="stranger")
    page = operator_client.get(f"/admin/batches/gatewayevent/{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
