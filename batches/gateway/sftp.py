"""The SFTP gateway: paramiko's server side over `ClientHome`.

One thread per connection. Password and public-key logins go through
batches.gateway.accounts; the only thing a session may open is the "sftp"
subsystem (paramiko refuses shells, exec, port forwarding, agent and X11 by default,
and `check_channel_request` refuses every channel but "session").
"""

import logging
import os
import socket
import stat
import threading
import time

import paramiko
from django.conf import settings
from django.db import close_old_connections, connections
from paramiko.sftp import SFTP_FAILURE, SFTP_NO_SUCH_FILE, SFTP_OK, SFTP_PERMISSION_DENIED

from batches.gateway.accounts import gateway_account_authenticate, gateway_key_offered
from batches.gateway.home import ClientHome, Entry, Upload
from batches.gateway.host_key import sftp_host_key
from batches.gateway.limits import GatewayLimits, Slot
from batches.gateway.protocols import GatewayProtocol

logger = logging.getLogger("batches.gateway")

PROTOCOL = GatewayProtocol.SFTP
# Larger than paramiko's defaults (2 MiB window, 32 KiB packets), so that a client's
# pipelined writes never wait for the window to reopen.
WINDOW_BYTES = 64 * 1024 * 1024
MAX_PACKET_BYTES = 256 * 1024


def _errors_as_status(action):
    """Run a file operation; a refusal becomes its SFTP status, never a traceback."""

    def run(*args, **kwargs):
        try:
            return action(*args, **kwargs)
        except FileNotFoundError:
            return SFTP_NO_SUCH_FILE
        except PermissionError:
            return SFTP_PERMISSION_DENIED
        except OSError as error:
            return paramiko.SFTPServer.convert_errno(error.errno) if error.errno else SFTP_FAILURE

    return run


class GatewayServer(paramiko.ServerInterface):
    """Authentication and channel policy of one connection."""

    def __init__(self, address: str, transport: paramiko.Transport, limits: GatewayLimits):
        self.address = address
        self.transport = transport
        self.limits = limits
        self.account = None
        self.offered_key: bytes | None = None
        self.session: Slot | None = None  # the account's session slot, once logged in
        self.sftp_started = threading.Event()

    def get_allowed_auths(self, username):
        return "publickey,password"

    def check_auth_password(self, username, password):
        self.account = _in_own_connection(
            gateway_account_authenticate,
            username=username,
            password=password,
            protocol=PROTOCOL,
            address=self.address,
            admit=self._take_session,
        )
        return paramiko.AUTH_SUCCESSFUL if self.account else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        # Asked before the client's signature is checked: the login itself is decided
        # (and logged) once the session opens, the signature proven by then.
        blob = key.asbytes()
        if _in_own_connection(
            gateway_key_offered,
            username=username,
            public_key=blob,
            protocol=PROTOCOL,
            address=self.address,
        ) and _in_own_connection(
            self.limits.session_room, protocol=PROTOCOL, username=username, address=self.address
        ):
            self.offered_key = blob
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def _take_session(self, account) -> bool:
        if self.session is not None:  # taken by an earlier attempt whose login then failed
            return True
        self.session = self.limits.session_acquire(
            protocol=PROTOCOL, account=account, address=self.address
        )
        return self.session is not None

    def check_channel_request(self, kind, chanid):
        if kind != "session" or self._account_after_key_login() is None:
            return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        return paramiko.OPEN_SUCCEEDED

    def check_channel_subsystem_request(self, channel, name):
        started = name == "sftp" and super().check_channel_subsystem_request(channel, name)
        if started:
            self.sftp_started.set()
        return started

    def _account_after_key_login(self):
        """The account of a key login, decided once paramiko verified the signature
        (a channel is opened only after a successful login)."""
        if self.account is None and self.offered_key is not None:
            self.account = _in_own_connection(
                gateway_account_authenticate,
                username=self.transport.get_username(),
                public_key=self.offered_key,
                protocol=PROTOCOL,
                address=self.address,
                admit=self._take_session,
            )
        return self.account


def _in_own_connection(function, **kwargs):
    """Call a database function from a paramiko thread, closing the thread's connection."""
    try:
        return function(**kwargs)
    finally:
        connections.close_all()


class GatewaySFTPServer(paramiko.SFTPServer):
    """paramiko's SFTP subsystem, with the idle timeout on its channel; the connection
    ends with its SFTP session (silent too long, or closed by the client)."""

    def start_subsystem(self, name, transport, channel):
        self.connection = transport
        channel.settimeout(settings.SFTP_IDLE_TIMEOUT)
        super().start_subsystem(name, transport, channel)

    def finish_subsystem(self):
        try:
            super().finish_subsystem()
        finally:
            self.connection.close()


class GatewaySFTP(paramiko.SFTPServerInterface):
    """The SFTP file operations of a logged-in account, over its ClientHome."""

    def __init__(self, server: GatewayServer, *args, **kwargs):
        super().__init__(server, *args, **kwargs)
        self.home = ClientHome(server.account, PROTOCOL, server.address)

    def session_ended(self):
        try:
            self.home.abort_open_uploads()
        finally:
            connections.close_all()

    def canonicalize(self, path):
        try:
            return self.home.resolve(path).text
        except FileNotFoundError:
            return "/"

    @_errors_as_status
    def list_folder(self, path):
        return [_attributes(entry) for entry in self.home.listdir(path)]

    @_errors_as_status
    def stat(self, path):
        return _attributes(self.home.stat(path))

    lstat = stat

    @_errors_as_status
    def open(self, path, flags, attr):
        if flags & (os.O_WRONLY | os.O_RDWR):
            if flags & os.O_APPEND:
                raise PermissionError("appending (resumed uploads) is not supported")
            return UploadHandle(self.home.upload_open(path), flags)
        return ReadHandle(self.home.open_read(path), self.home.stat(path), flags)

    @_errors_as_status
    def remove(self, path):
        self.home.remove(path)
        return SFTP_OK

    @_errors_as_status
    def rename(self, oldpath, newpath):
        self.home.rename(oldpath, newpath)
        return SFTP_OK

    posix_rename = rename

    @_errors_as_status
    def mkdir(self, path, attr):
        self.home.refuse(path, "making a folder")

    @_errors_as_status
    def rmdir(self, path):
        self.home.refuse(path, "removing a folder")

    @_errors_as_status
    def chattr(self, path, attr):
        self.home.refuse(path, "changing attributes")

    @_errors_as_status
    def symlink(self, target_path, path):
        self.home.refuse(path, "making a link")

    @_errors_as_status
    def readlink(self, path):
        self.home.refuse(path, "reading a link")


def _attributes(entry: Entry) -> paramiko.SFTPAttributes:
    attributes = paramiko.SFTPAttributes()
    attributes.filename = entry.name
    attributes.st_size = entry.size
    attributes.st_mtime = attributes.st_atime = int(entry.modified)
    attributes.st_mode = (stat.S_IFDIR | 0o755) if entry.is_folder else (stat.S_IFREG | 0o644)
    return attributes


class UploadHandle(paramiko.SFTPHandle):
    def __init__(self, upload: Upload, flags):
        super().__init__(flags)
        self.upload = upload

    @_errors_as_status
    def write(self, offset, data):
        self.upload.write(data, offset)
        return SFTP_OK

    def close(self):
        try:
            self.upload.close()
        finally:
            connections.close_all()

    def stat(self):
        return _attributes(Entry(self.upload.where.name, False, self.upload.size))

    def chattr(self, attr):
        return SFTP_OK  # clients set times after a put; the gateway keeps its own


class ReadHandle(paramiko.SFTPHandle):
    def __init__(self, handle, entry: Entry, flags):
        super().__init__(flags)
        self.readfile = handle
        self.entry = entry

    def stat(self):
        return _attributes(self.entry)


class SftpGateway:
    """Listens for SFTP connections and serves each in its own thread."""

    def __init__(self, bind: str, port: int):
        self.host_key = sftp_host_key()
        self.listener = socket.create_server((bind, port), reuse_port=False)
        self.listener.settimeout(0.5)
        self.address = self.listener.getsockname()[:2]
        self.stopping = threading.Event()
        self.limits = GatewayLimits()

    def serve_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, peer = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self.stopping.is_set():
                    break
                raise
            threading.Thread(
                target=self.serve_connection, args=(sock, peer[0]), daemon=True
            ).start()
        self.listener.close()

    def shutdown(self) -> None:
        self.stopping.set()

    def serve_connection(self, sock: socket.socket, address: str) -> None:
        connection = _in_own_connection(
            self.limits.connection_acquire, protocol=PROTOCOL, address=address
        )
        if connection is None:
            sock.close()  # past the address's limit: before any SSH byte is sent
            return
        server = None
        try:
            sock.settimeout(None)
            transport = paramiko.Transport(
                sock, default_window_size=WINDOW_BYTES, default_max_packet_size=MAX_PACKET_BYTES
            )
            try:
                transport.add_server_key(self.host_key)
                transport.set_subsystem_handler("sftp", GatewaySFTPServer, GatewaySFTP)
                server = GatewayServer(address, transport, self.limits)
                transport.handshake_timeout = settings.SFTP_LOGIN_TIMEOUT
                transport.banner_timeout = settings.SFTP_LOGIN_TIMEOUT
                # Not waiting for the key exchange here: the login timeout counts from now.
                transport.start_server(event=threading.Event(), server=server)
                if not _sftp_started(transport, server, settings.SFTP_LOGIN_TIMEOUT):
                    if transport.is_active():
                        logger.info(
                            "Gateway sftp: %s did not log in and open an SFTP session in time",
                            address,
                        )
                    return
                transport.join()
            except (paramiko.SSHException, EOFError, OSError) as error:
                logger.info("Gateway sftp: connection from %s ended: %s", address, error)
            finally:
                transport.close()
                close_old_connections()
        finally:
            if server is not None and server.session is not None:
                server.session.release()
            connection.release()


def _sftp_started(transport: paramiko.Transport, server: GatewayServer, seconds: float) -> bool:
    """Whether the client logged in and started SFTP within `seconds` (a session channel
    that never asks for it would otherwise hold its slots for ever). Polled, because
    paramiko wakes nobody waiting here when the client goes away."""
    deadline = time.monotonic() + seconds
    while transport.is_active() and time.monotonic() < deadline:
        if server.sftp_started.wait(0.1):
            return True
    return server.sftp_started.is_set() and transport.is_active()
