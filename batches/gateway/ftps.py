"""The FTPS gateway: pyftpdlib's TLS_FTPHandler over `ClientHome`.

Explicit FTPS only: a client connects in clear, sends AUTH TLS, then PBSZ 0 and PROT P;
USER/PASS before AUTH and any data connection before PROT P are refused (unless
FTPS_ALLOW_PLAIN_FTP, for a legacy private link). TLS 1.2 or newer, with the one
certificate of settings.FTPS_CERTIFICATE. One thread per connection (pyftpdlib's
ThreadedFTPServer), each with its own database connection, closed when it ends.

Logins go through `gateway_account_authenticate` (defender, audit); every path goes through
`ClientHome` (`HomeFilesystem` below only translates), so / holds exactly inbox and outbox.
An upload streams into ClientHome's atomic Upload. FTP marks the end of a file by closing
the data connection, so over TLS only a close preceded by the client's TLS close_notify
completes it: a connection that just drops (reset, or closed without close_notify) is an
upload cut off, removed and never ingested.
"""

import errno
import logging
import os
import stat
import sys
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from OpenSSL import SSL
from pyftpdlib.exceptions import AuthenticationFailed, _RetryError
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler
from pyftpdlib.handlers.ftp.data import DTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import ThreadedFTPServer

from batches.gateway.accounts import gateway_account_authenticate
from batches.gateway.home import ClientHome, Entry, Upload
from batches.gateway.limits import GatewayLimits, Slot
from batches.gateway.protocols import GatewayProtocol

logger = logging.getLogger("batches.gateway")

PROTOCOL = GatewayProtocol.FTPS
# pyftpdlib's permission letters: change folder, list, read, delete, rename, write. Not
# append or resume (a, REST), make folders (m), change modes (M) or times (T).
PERMISSIONS = "elrdfw"
# Seconds before a refused password is answered (pyftpdlib's default is 3): slows a
# guesser on one connection; the defender (batches/gateway/defender.py) bans across them.
AUTH_FAILED_DELAY = 1
DATA_BUFFER_BYTES = 256 * 1024


def ftps_ssl_context(certificate_pem: str, private_key_pem: str) -> SSL.Context:
    """TLS 1.2 or newer, forward-secret AEAD ciphers for TLS 1.2, no compression; the
    certificate's chain (intermediates after it in the PEM text) sent to clients."""
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(
        SSL.OP_NO_SSLv2
        | SSL.OP_NO_SSLv3
        | SSL.OP_NO_TLSv1
        | SSL.OP_NO_TLSv1_1
        | SSL.OP_NO_COMPRESSION
        | SSL.OP_CIPHER_SERVER_PREFERENCE
    )
    context.set_cipher_list(b"ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL")
    leaf, *chain = x509.load_pem_x509_certificates(certificate_pem.encode())
    context.use_certificate(leaf)
    for certificate in chain:
        context.add_extra_chain_cert(certificate)
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    context.use_privatekey(key)
    context.check_privatekey()
    return context


def passive_ports(text: str) -> list[int] | None:
    """FTPS_PASSIVE_PORTS ("60000-60099") as a list of ports; None when empty."""
    if not text.strip():
        return None
    try:
        first, last = (int(part) for part in text.split("-"))
    except ValueError:
        first = last = 0
    if not 1024 <= first <= last <= 65535:
        raise ImproperlyConfigured(
            f'FTPS_PASSIVE_PORTS must be "first-last" within 1024-65535, not {text!r}.'
        )
    return list(range(first, last + 1))


class GatewayAuthorizer:
    """pyftpdlib's authorizer interface over the gateway accounts."""

    def validate_authentication(self, username, password, handler):
        account = gateway_account_authenticate(
            username=username,
            password=password,
            protocol=PROTOCOL,
            address=handler.remote_ip,
            admit=handler.session_take,
        )
        if account is None:
            raise AuthenticationFailed("Authentication failed.")
        handler.home = ClientHome(account, PROTOCOL, handler.remote_ip)

    def get_home_dir(self, username):
        return "/"

    def get_msg_login(self, username):
        return "Logged in: upload to /inbox, results in /outbox."

    def get_msg_quit(self, username):
        return "Goodbye."

    def has_perm(self, username, perm, path=None):
        return perm in PERMISSIONS

    def get_perms(self, username):
        return PERMISSIONS

    def impersonate_user(self, username, password):
        pass

    def terminate_impersonation(self, username):
        pass


def _stat_result(entry: Entry) -> os.stat_result:
    mode = (stat.S_IFDIR | 0o755) if entry.is_folder else (stat.S_IFREG | 0o644)
    modified = int(entry.modified)
    # mode, inode, device, links, uid, gid, size, atime, mtime, ctime
    return os.stat_result((mode, 0, 0, 1, 0, 0, entry.size, modified, modified, modified))


class HomeFilesystem(AbstractedFS):
    """pyftpdlib's file system interface over the logged-in account's ClientHome.

    Its "real" paths are the client's own normalised paths ("/inbox/may.7z"): ClientHome
    confines each one, so pyftpdlib's own root check has nothing left to do.
    """

    def __init__(self, root, cmd_channel):
        super().__init__("/", cmd_channel)
        self.home: ClientHome = cmd_channel.home

    def ftp2fs(self, ftppath):
        return self.ftpnorm(ftppath)

    def fs2ftp(self, fspath):
        return fspath

    def validpath(self, path):
        return True

    def realpath(self, path):
        return path

    def open(self, filename, mode):
        if mode == "rb":
            return self.home.open_read(filename)
        if mode == "wb":
            return UploadFile(self.home.upload_open(filename))
        raise PermissionError(errno.EACCES, "Appending and resumed uploads are not supported")

    def mkstemp(self, suffix="", prefix="", dir=None, mode="wb"):
        self.home.refuse(dir or "/", "choosing a unique name (STOU)")

    def chdir(self, path):
        where = self.home.resolve(path)
        if where.name is not None:
            raise NotADirectoryError(errno.ENOTDIR, "Not a folder", path)
        self.cwd = where.text

    def mkdir(self, path):
        self.home.refuse(path, "making a folder")

    def rmdir(self, path):
        self.home.refuse(path, "removing a folder")

    def chmod(self, path, mode):
        self.home.refuse(path, "changing modes")

    def utime(self, path, timeval):
        self.home.refuse(path, "changing times")

    def readlink(self, path):
        self.home.refuse(path, "reading a link")

    def listdir(self, path):
        return [entry.name for entry in self.home.listdir(path)]

    listdirinfo = listdir

    def remove(self, path):
        self.home.remove(path)

    def rename(self, src, dst):
        self.home.rename(src, dst)

    def stat(self, path):
        return _stat_result(self.home.stat(path))

    lstat = stat

    def _entry(self, path) -> Entry | None:
        try:
            return self.home.stat(path)
        except OSError:
            return None

    def isfile(self, path):
        entry = self._entry(path)
        return entry is not None and not entry.is_folder

    def isdir(self, path):
        entry = self._entry(path)
        return entry is not None and entry.is_folder

    def islink(self, path):
        return False

    def lexists(self, path):
        return self._entry(path) is not None

    def getsize(self, path):
        return self.home.stat(path).size

    def getmtime(self, path):
        return self.home.stat(path).modified

    def get_user_by_uid(self, uid):
        return "kokatto"

    def get_group_by_gid(self, gid):
        return "kokatto"


class UploadFile:
    """The file object pyftpdlib writes a STOR into. Closing it does not complete the
    upload: the data connection decides (GatewayDTPHandler.close) whether it `finish`es
    or was cut off; a close without that decision (an error, the session ending) is a
    cut-off."""

    def __init__(self, upload: Upload):
        self.upload = upload
        self.name = upload.where.text
        self.closed = False

    def write(self, data: bytes) -> None:
        self.upload.write(data, self.upload.size)

    def finish(self) -> None:
        self.closed = True
        self.upload.close()

    def close(self, why: str = "the transfer ended before the file was complete") -> None:
        if self.closed:
            return
        self.closed = True
        if self.upload in self.upload.home.open_uploads:  # not refused (too large) already
            self.upload.abort(why)


class GatewayDTPHandler(TLS_DTPHandler):
    """A data connection that tells a finished upload from one cut off (module docstring)."""

    ac_in_buffer_size = DATA_BUFFER_BYTES
    ac_out_buffer_size = DATA_BUFFER_BYTES
    cut_off = False

    def recv(self, buffer_size):
        try:
            data = self.socket.recv(buffer_size)
        except SSL.ZeroReturnError:
            data = b""  # the client's TLS close_notify: the file is complete
        except SSL.WantReadError as error:
            self._ssl_want_read = True
            raise _RetryError from error
        except SSL.WantWriteError as error:
            self._ssl_want_write = True
            raise _RetryError from error
        except (BlockingIOError, InterruptedError) as error:
            raise _RetryError from error
        except (SSL.Error, OSError) as error:
            logger.info(
                "Gateway ftps: data connection from %s dropped: %r", self.client_address, error
            )
            self.cut_off = True
            self._error = True  # no TLS shutdown on a dead connection
            data = b""
        if not data:
            self.handle_close()
        return data

    def initiate_send(self):
        # Before the TLS handshake is done nothing can be sent: an empty listing would
        # otherwise close the connection mid-handshake (pyftpdlib pushes then closes).
        if self._ssl_accepting:
            return
        super().initiate_send()

    def send(self, data):
        # asynchat sends the empty string of an empty listing; pyOpenSSL takes a write of
        # nothing for a lost connection, and the listing would end in 426.
        return super().send(data) if data else 0

    @property
    def client_address(self) -> str:
        return getattr(self.cmd_channel, "remote_ip", "?")

    def handle_error(self):
        # pyftpdlib's TLS mixin closes without a word: the client must hear why its
        # transfer ended ("426 Files are limited to ... bytes; transfer aborted.").
        self._error = True
        refusal = getattr(sys.exc_info()[1], "__cause__", None)  # a write ClientHome refused
        if isinstance(refusal, OSError) and refusal.strerror:
            self._resp = (f"426 {refusal.strerror}; transfer aborted.", logger.info)
            self.close()
            return
        DTPHandler.handle_error(self)

    def handle_close(self):
        if self.cut_off and self.receive and not self._closed:
            self._resp = (
                "426 Connection lost before the end of the file; upload discarded.",
                logger.info,
            )
            self.transfer_finished = False
            self.close()
            return
        super().handle_close()

    def close(self):
        upload = self.file_obj
        if isinstance(upload, UploadFile) and not upload.closed and not self._closed:
            if self.transfer_finished and not self.cut_off:
                try:
                    upload.finish()
                except Exception:
                    logger.exception(
                        "Gateway ftps: storing %s from %s failed", upload.name, self.client_address
                    )
                    self._resp = (
                        "451 The file could not be stored; send it again.",
                        logger.warning,
                    )
            else:
                upload.close()
        try:
            super().close()
        finally:
            connections.close_all()


class GatewayFTPHandler(TLS_FTPHandler):
    """One control connection. Configured per gateway by `FtpsGateway` (a subclass)."""

    authorizer = GatewayAuthorizer()
    abstracted_fs = HomeFilesystem
    dtp_handler = GatewayDTPHandler
    tls_control_required = True
    tls_data_required = True
    banner = "Kokatto file-transfer gateway: AUTH TLS, then PBSZ 0 and PROT P."
    auth_failed_timeout = AUTH_FAILED_DELAY
    max_login_attempts = 3
    use_sendfile = False
    home: ClientHome | None = None
    session: Slot | None = None  # the account's session slot, once logged in
    limits: GatewayLimits  # the gateway's, set by `FtpsGateway`
    login_timeout = 30
    idle_timeout = 600

    def __init__(self, conn, server, ioloop=None):
        self.connected_at = time.monotonic()
        super().__init__(conn, server, ioloop)

    def pre_process_command(self, line, cmd, arg):
        # The idle timer (set to the login timeout until then) closes a silent connection;
        # this one that keeps sending commands without logging in.
        if not self.authenticated and time.monotonic() - self.connected_at > self.login_timeout:
            self.respond(f"421 Log in within {self.login_timeout} seconds; closing.")
            self.close_when_done()
            return
        try:
            super().pre_process_command(line, cmd, arg)
        finally:
            # A database connection per command, never one per open FTP connection: a
            # crowd of idle or failed logins must not use up the database's connections.
            connections.close_all()

    def handle_auth_success(self, home, password, msg_login):
        super().handle_auth_success(home, password, msg_login)
        self.timeout = self.idle_timeout
        if self._idler is not None and not self._idler.cancelled:
            self._idler.cancel()
        self._idler = self.ioloop.call_later(
            self.timeout, self.handle_timeout, _errback=self.handle_error
        )

    def flush_account(self):
        super().flush_account()
        self.session_end()

    def session_take(self, account) -> bool:
        """Whether `account` may open one more session (GATEWAY_MAX_SESSIONS_PER_ACCOUNT)."""
        self.session = self.limits.session_acquire(
            protocol=PROTOCOL, account=account, address=self.remote_ip
        )
        return self.session is not None

    def session_end(self) -> None:
        """Uploads not finished when the account's session ends are cut off, and its
        session slot is given back."""
        home, self.home = self.home, None
        session, self.session = self.session, None
        try:
            if home is not None:
                home.abort_open_uploads()
        finally:
            if session is not None:
                session.release()


class GatewayFTPServer(ThreadedFTPServer):
    """A thread per connection; its database connection is closed when it ends. Its own
    loop, stop event and lock (pyftpdlib's are shared by every server of a process)."""

    def __init__(self, address, handler):
        self._exit = threading.Event()
        self._lock = threading.Lock()
        super().__init__(address, handler, ioloop=IOLoop())

    def _loop(self, handler):
        try:
            super()._loop(handler)
        finally:
            try:
                handler.session_end()
            finally:
                connections.close_all()


class FtpsGateway:
    """Listens for FTPS connections on (bind, port) with the settings of the moment."""

    def __init__(self, bind: str, port: int):
        plain_allowed = settings.FTPS_ALLOW_PLAIN_FTP
        dtp_handler = type(
            "ConfiguredDTPHandler", (GatewayDTPHandler,), {"timeout": settings.FTPS_IDLE_TIMEOUT}
        )
        self.handler = type(
            "ConfiguredFTPHandler",
            (GatewayFTPHandler,),
            {
                "ssl_context": ftps_ssl_context(
                    settings.FTPS_CERTIFICATE, settings.FTPS_PRIVATE_KEY
                ),
                "tls_control_required": not plain_allowed,
                "tls_data_required": not plain_allowed,
                "passive_ports": passive_ports(settings.FTPS_PASSIVE_PORTS),
                "masquerade_address": settings.FTPS_MASQUERADE_ADDRESS or None,
                "timeout": settings.FTPS_LOGIN_TIMEOUT,
                "login_timeout": settings.FTPS_LOGIN_TIMEOUT,
                "idle_timeout": settings.FTPS_IDLE_TIMEOUT,
                "dtp_handler": dtp_handler,
                "limits": GatewayLimits(),
            },
        )
        self.server = GatewayFTPServer((bind, port), self.handler)
        self.server.max_cons_per_ip = settings.GATEWAY_MAX_CONNECTIONS_PER_ADDRESS
        self.address = self.server.address
        self.plain_allowed = plain_allowed
        self.stopping = False

    def serve_forever(self) -> None:
        while not self.stopping:
            self.server.serve_forever(timeout=0.5, blocking=False, handle_exit=False)
        self.server.close_all()

    def shutdown(self) -> None:
        self.stopping = True
