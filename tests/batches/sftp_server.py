"""A real SFTP server on loopback for tests: paramiko's server classes serving a local folder.

    with SFTPTestServer(root, username="kokatto", password="...") as server:
        server.port              # ephemeral, on 127.0.0.1
        server.write_known_hosts(path)   # pins its host key for clients

Password authentication only; every path a client names is resolved inside `root` (".." never
leaves it). One RSA host key is generated per test session (`host_key()`), since generating
one takes a while. Stopping the server closes every connection it accepted and joins its
threads.
"""

import errno
import os
import posixpath
import socket
import threading
from functools import cache
from pathlib import Path

import paramiko
from paramiko import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
    SFTP_OK,
    SFTPAttributes,
    SFTPHandle,
    SFTPServer,
    SFTPServerInterface,
)

HOST = "127.0.0.1"


@cache
def host_key() -> paramiko.RSAKey:
    """The servers' host key, the same for every server of the test session."""
    return paramiko.RSAKey.generate(2048)


def _errors_as_sftp_codes(method):
    """An OSError in a server method becomes the matching SFTP status for the client."""

    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)

    return wrapper


class _PasswordOnly(paramiko.ServerInterface):
    def __init__(self, server: "SFTPTestServer"):
        self.server = server

    def get_allowed_auths(self, username):
        return "password"

    def check_auth_password(self, username, password):
        if (username, password) == (self.server.username, self.server.password):
            self.server.logins += 1
            return AUTH_SUCCESSFUL
        self.server.failed_logins += 1
        return AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return OPEN_SUCCEEDED if kind == "session" else OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _LocalHandle(SFTPHandle):
    """An open local file; paramiko's SFTPHandle reads and writes `readfile`/`writefile`."""

    def __init__(self, flags, local_path: str, file):
        super().__init__(flags)
        self.local_path = local_path
        self.readfile = self.writefile = file

    @_errors_as_sftp_codes
    def stat(self):
        return SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))

    @_errors_as_sftp_codes
    def chattr(self, attr):
        SFTPServer.set_file_attr(self.local_path, attr)
        return SFTP_OK


class _LocalFolder(SFTPServerInterface):
    """Serves the folder `root`: the client's "/" is `root`."""

    def __init__(self, server, *args, root: Path, **kwargs):
        super().__init__(server, *args, **kwargs)
        self.root = str(root)

    def canonicalize(self, path):
        # normpath of an absolute path drops any ".." that would climb above "/".
        return "/" + posixpath.normpath("/" + path).lstrip("/")

    def _local(self, path) -> str:
        return self.root + self.canonicalize(path)

    @_errors_as_sftp_codes
    def open(self, path, flags, attr):
        local = self._local(path)
        descriptor = os.open(local, flags, 0o644)
        if flags & os.O_CREAT and attr is not None:
            attr._flags &= ~attr.FLAG_PERMISSIONS
            SFTPServer.set_file_attr(local, attr)
        if flags & os.O_WRONLY:
            mode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            mode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            mode = "rb"
        return _LocalHandle(flags, local, os.fdopen(descriptor, mode))

    @_errors_as_sftp_codes
    def list_folder(self, path):
        local = self._local(path)
        listing = []
        for name in sorted(os.listdir(local)):
            # Each entry's own attributes, a symlink's too, as OpenSSH's readdir answers.
            attributes = SFTPAttributes.from_stat(os.lstat(os.path.join(local, name)))
            attributes.filename = name
            listing.append(attributes)
        return listing

    @_errors_as_sftp_codes
    def stat(self, path):
        return SFTPAttributes.from_stat(os.stat(self._local(path)))

    @_errors_as_sftp_codes
    def lstat(self, path):
        return SFTPAttributes.from_stat(os.lstat(self._local(path)))

    @_errors_as_sftp_codes
    def remove(self, path):
        os.remove(self._local(path))
        return SFTP_OK

    @_errors_as_sftp_codes
    def rename(self, oldpath, newpath):
        local_new = self._local(newpath)
        if os.path.exists(local_new):  # SFTP v3 rename never replaces
            return SFTPServer.convert_errno(errno.EEXIST)
        os.rename(self._local(oldpath), local_new)
        return SFTP_OK

    @_errors_as_sftp_codes
    def posix_rename(self, oldpath, newpath):
        os.replace(self._local(oldpath), self._local(newpath))
        return SFTP_OK

    @_errors_as_sftp_codes
    def mkdir(self, path, attr):
        local = self._local(path)
        os.mkdir(local)
        if attr is not None:
            SFTPServer.set_file_attr(local, attr)
        return SFTP_OK

    @_errors_as_sftp_codes
    def rmdir(self, path):
        os.rmdir(self._local(path))
        return SFTP_OK

    @_errors_as_sftp_codes
    def chattr(self, path, attr):
        SFTPServer.set_file_attr(self._local(path), attr)
        return SFTP_OK


class SFTPTestServer:
    """An SFTP server on 127.0.0.1 (ephemeral port) serving `root`, run in background threads."""

    def __init__(self, root: Path, *, username: str, password: str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.username = username
        self.password = password
        self.logins = 0
        self.failed_logins = 0
        self._transports: list[paramiko.Transport] = []
        self._stopping = threading.Event()
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.05)  # so the accept loop sees `stop` promptly
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="sftp-test-server", daemon=True)

    def __enter__(self) -> "SFTPTestServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            transport = paramiko.Transport(connection)
            transport.add_server_key(host_key())
            transport.set_subsystem_handler("sftp", SFTPServer, _LocalFolder, root=self.root)
            self._transports.append(transport)
            # With an event, negotiation runs in the transport's own thread: a client that
            # hangs up during it (a refused host key, say) cannot stall this loop.
            transport.start_server(event=threading.Event(), server=_PasswordOnly(self))

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for transport in self._transports:
            transport.close()
        for transport in self._transports:
            transport.join(timeout=5)

    @property
    def open_connections(self) -> int:
        return sum(transport.is_active() for transport in self._transports)

    def write_known_hosts(self, path: Path, key: paramiko.PKey | None = None) -> Path:
        """A known_hosts file pinning this server's host key (or `key`, to pin a wrong one)."""
        key = key or host_key()
        known = paramiko.HostKeys()
        known.add(f"[{HOST}]:{self.port}", key.get_name(), key)
        known.save(str(path))
        return path

    def client(self) -> "_ClosingSession":
        """An SFTP session as a client's uploader would open one (host key checked)."""
        transport = paramiko.Transport((HOST, self.port))
        transport.connect(hostkey=host_key(), username=self.username, password=self.password)
        return _ClosingSession(paramiko.SFTPClient.from_transport(transport), transport)


class _ClosingSession:
    """An SFTPClient whose close() (or `with` exit) also closes its transport."""

    def __init__(self, session: paramiko.SFTPClient, transport: paramiko.Transport):
        self._session = session
        self._transport = transport

    def __getattr__(self, name):
        return getattr(self._session, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._session.close()
        self._transport.close()
