"""The gateway's connection and session limits, and that every way a connection ends
gives its slots back: clients killed, idle and login timeouts, protocol errors."""

import os
import signal
import socket
import subprocess

import paramiko
import pytest

from batches.models import GatewayAction, GatewayEvent, GatewayLoginFailure, GatewayScore
from tests.gateway import test_sftp as sftp_tests
from tests.gateway.conftest import PASSWORD, wait_for
from tests.gateway.test_sftp import (
    openssh_sftp,
    openssh_sftp_command,
    paramiko_login,
)

# The SFTP tests' gateway on a free loopback port, and a known_hosts file pinning it.
gateway = sftp_tests.gateway
known_hosts = sftp_tests.known_hosts

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

USER = "acme-upload"


def _banner(address) -> bytes:
    """What the gateway first sends a new TCP connection (b"" once it closed it)."""
    with socket.create_connection(address, timeout=5) as sock:
        return sock.recv(64)


def _closed(sock: socket.socket) -> bool:
    """Whether the gateway closed this connection (reset, when our bytes were left unread)
    before the socket's timeout; whatever it sends first is read past."""
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return True


def _refusals(reason_start: str) -> list[GatewayEvent]:
    return list(
        GatewayEvent.objects.filter(
            action=GatewayAction.LOGIN_REFUSED, reason__startswith=reason_start
        )
    )


def _all_released(gateway) -> bool:
    return not gateway.limits.open_connections("127.0.0.1") and not (
        gateway.limits.open_sessions(USER)
    )


def _refused_login(gateway) -> None:
    transport = paramiko.Transport(gateway.address)
    try:
        with pytest.raises(paramiko.AuthenticationException):
            transport.connect(username=USER, password=PASSWORD)
    finally:
        transport.close()


def _openssh_session(gateway, known_hosts, key) -> subprocess.Popen:
    """OpenSSH's sftp logged in and waiting for commands, in a process group of its own."""
    return subprocess.Popen(
        openssh_sftp_command(gateway, known_hosts, key),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_a_connection_past_the_address_limit_is_closed_before_the_handshake(gateway, settings):
    settings.GATEWAY_MAX_CONNECTIONS_PER_ADDRESS = 2
    held = [socket.create_connection(gateway.address, timeout=5) for _ in range(2)]
    assert all(sock.recv(64).startswith(b"SSH-2.0-") for sock in held)

    assert _banner(gateway.address) == b""  # closed without a word of SSH
    assert _banner(gateway.address) == b""
    [event] = _refusals("too many connections")  # one row for the run of refusals
    assert (event.address, event.outcome) == ("127.0.0.1", "refused")

    held.pop().close()
    assert wait_for(lambda: gateway.limits.open_connections("127.0.0.1") == 1)
    assert _banner(gateway.address).startswith(b"SSH-2.0-")
    held.pop().close()
    assert wait_for(lambda: _all_released(gateway))


def test_a_login_past_the_session_limit_is_refused_and_not_scored_as_a_wrong_password(
    gateway, known_hosts, ssh_key, settings
):
    settings.GATEWAY_MAX_SESSIONS_PER_ACCOUNT = 2
    sessions = [paramiko_login(gateway) for _ in range(2)]

    _refused_login(gateway)  # the right password, one session too many
    by_key = openssh_sftp(gateway, known_hosts, ssh_key, "ls /\n")
    assert by_key.returncode != 0 and "Permission denied" in by_key.stderr

    assert not GatewayScore.objects.exists() and not GatewayLoginFailure.objects.exists()
    [event] = _refusals("too many sessions")
    assert (event.username, event.account.username, event.outcome) == (USER, USER, "refused")

    sessions.pop().close()
    assert wait_for(lambda: gateway.limits.open_sessions(USER) == 1)
    sessions.append(paramiko_login(gateway))  # a slot came back
    for transport in sessions:
        transport.close()
    assert wait_for(lambda: _all_released(gateway))


def test_killed_clients_give_their_slots_back(gateway, known_hosts, ssh_key, settings):
    settings.GATEWAY_MAX_SESSIONS_PER_ACCOUNT = 3
    openssh = [_openssh_session(gateway, known_hosts, ssh_key) for _ in range(2)]
    uploader = paramiko_login(gateway)
    upload = paramiko.SFTPClient.from_transport(uploader).open("/inbox/cut.7z", "w")
    upload.write(b"x" * 100_000)
    upload.flush()
    assert wait_for(lambda: gateway.limits.open_sessions(USER) == 3)
    _refused_login(gateway)

    for process in openssh:
        os.killpg(process.pid, signal.SIGKILL)  # sftp and its ssh, mid-session
        process.wait(timeout=5)
    uploader.sock.close()  # a paramiko client whose connection drops mid-upload

    assert wait_for(lambda: _all_released(gateway))
    fresh = [paramiko_login(gateway) for _ in range(3)]
    for transport in fresh:
        transport.close()
    uploader.close()


def test_a_silent_session_gives_its_slots_back_at_the_idle_timeout(gateway, settings):
    settings.SFTP_IDLE_TIMEOUT = 1
    transport = paramiko_login(gateway)
    paramiko.SFTPClient.from_transport(transport).listdir("/")
    assert gateway.limits.open_sessions(USER) == 1
    assert wait_for(lambda: not transport.is_active(), seconds=4)
    assert wait_for(lambda: _all_released(gateway))


def test_a_connection_that_says_nothing_is_dropped_at_the_login_timeout(gateway, settings):
    settings.SFTP_LOGIN_TIMEOUT = 1
    with socket.create_connection(gateway.address, timeout=5) as sock:
        assert sock.recv(64).startswith(b"SSH-2.0-")
        assert gateway.limits.open_connections("127.0.0.1") == 1
        assert _closed(sock)
    assert wait_for(lambda: _all_released(gateway))


def test_a_login_that_never_asks_for_sftp_is_dropped_at_the_login_timeout(gateway, settings):
    settings.SFTP_LOGIN_TIMEOUT = 1
    transport = paramiko_login(gateway)
    transport.open_session()  # a session channel, and then no subsystem request
    assert gateway.limits.open_sessions(USER) == 1
    assert wait_for(lambda: not transport.is_active(), seconds=4)
    assert wait_for(lambda: _all_released(gateway))


def test_a_connection_speaking_garbage_gives_its_slot_back(gateway):
    with socket.create_connection(gateway.address, timeout=5) as sock:
        sock.recv(64)
        # A packet length that fits no cipher block: paramiko gives up on the connection.
        sock.sendall(b"SSH-2.0-x\r\n" + b"\x00\x00\x00\x05" + bytes(60))
        assert _closed(sock)
    assert wait_for(lambda: _all_released(gateway))


def test_another_accounts_sessions_are_counted_apart(gateway, client_8003, settings):
    from batches.gateway.accounts import gateway_account_create

    settings.GATEWAY_MAX_SESSIONS_PER_ACCOUNT = 1
    gateway_account_create(client=client_8003, username="other", password="other-pass")
    mine = paramiko_login(gateway, password=PASSWORD)
    theirs = paramiko_login(gateway, username="other", password="other-pass")
    assert gateway.limits.open_sessions("other") == 1
    theirs.close()
    mine.close()
