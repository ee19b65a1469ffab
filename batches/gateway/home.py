"""What a gateway account sees: its client's /inbox and /outbox, and nothing else.

Every path a client sends goes through `ClientHome.resolve`: NFC-normalised, joined
to "/" and normalised, and then it must be "/", a folder, or a plain file name in a
folder; anything else (`..` out of the home, another client's id, NUL, backslashes,
hidden names) leads nowhere. Files are read and written only through the batch
storage, under `home_path(client, ...)`.

Uploads are atomic: bytes go to a hidden `inbox/.upload-<uuid>`, hashed and counted
as they come, and take their final name only on a successful close, which also
hands the file to `batch_receive` (its ingest is queued at once). The protocol
servers call `abort_open_uploads` when a session ends before its files were
closed: those temporaries are deleted and never appear.

Each download, rename, delete and upload (finished or cut off) is logged and stored
as a gateway event (batches/gateway/audit.py).
"""

import errno
import hashlib
import logging
import os
import posixpath
import time
import unicodedata
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage

from batches.file_storage import NAME_MAX_BYTES, batch_storage, home_path
from batches.gateway.audit import gateway_event_record
from batches.inbox import IN_PROGRESS_SUFFIXES, batch_receive, is_symlink
from batches.models import UNFINISHED, Batch, GatewayAccount, GatewayAction, GatewayOutcome

logger = logging.getLogger("batches.gateway")

INBOX, OUTBOX = "inbox", "outbox"
FOLDERS = (INBOX, OUTBOX)
UPLOAD_PREFIX = ".upload-"


def _nowhere(path: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, "No such file or folder", path)


def _refused(path: str, why: str) -> PermissionError:
    return PermissionError(errno.EACCES, why, path)


@dataclass(frozen=True)
class HomePath:
    folder: str | None  # None: the home itself ("/")
    name: str | None  # None: the folder itself

    @property
    def text(self) -> str:
        return "/" + "/".join(part for part in (self.folder, self.name) if part)


@dataclass(frozen=True)
class Entry:
    name: str
    is_folder: bool
    size: int = 0
    modified: float = 0.0


def name_problem(name: str) -> str:
    """Why a file name is not one a client may use, or ""."""
    if not name or name in (".", ".."):
        return "empty name"
    if name.startswith("."):
        return "names starting with '.' are not accepted"
    if any(ord(char) < 32 or ord(char) == 127 for char in name) or "\\" in name:
        return "control characters and backslashes are not accepted in names"
    if len(name.encode()) > NAME_MAX_BYTES:
        return f"names are limited to {NAME_MAX_BYTES} bytes"
    return ""


class ClientHome:
    """The virtual file system of one logged-in gateway account."""

    def __init__(self, account: GatewayAccount, protocol: str = "sftp", address: str = ""):
        self.account = account
        self.client = account.client
        self.protocol = protocol
        self.address = address  # the client's, for the audit trail
        self.storage = batch_storage()
        self.open_uploads: set[Upload] = set()

    # Paths

    def resolve(self, path: str) -> HomePath:
        """The home path a client's path means, or FileNotFoundError: it leads nowhere."""
        if "\x00" in path or "\\" in path:
            raise _nowhere(path)
        normal = posixpath.normpath(posixpath.join("/", unicodedata.normalize("NFC", path)))
        parts = [part for part in normal.split("/") if part]
        if not parts:
            return HomePath(None, None)
        if parts[0] not in FOLDERS or len(parts) > 2:
            raise _nowhere(path)
        if len(parts) == 1:
            return HomePath(parts[0], None)
        if name_problem(parts[1]):
            raise _nowhere(path)
        return HomePath(parts[0], parts[1])

    def _storage_path(self, where: HomePath) -> str:
        return home_path(self.client, where.folder, where.name or "")

    def _file(self, path: str, folder: str | None = None) -> HomePath:
        where = self.resolve(path)
        if where.name is None:
            raise _refused(path, "a folder, not a file")
        if folder and where.folder != folder:
            raise _refused(path, f"only allowed in /{folder}")
        return where

    # Reading

    def listdir(self, path: str) -> list[Entry]:
        where = self.resolve(path)
        if where.name is not None:
            raise OSError(errno.ENOTDIR, "Not a folder", path)
        if where.folder is None:
            return [Entry(folder, is_folder=True) for folder in FOLDERS]
        try:
            _, names = self.storage.listdir(self._storage_path(where))
        except FileNotFoundError:
            return []
        entries = []
        for name in sorted(names):
            if name_problem(name):
                continue
            try:
                entries.append(self._file_entry(HomePath(where.folder, name)))
            except FileNotFoundError:
                continue
        return entries

    def stat(self, path: str) -> Entry:
        where = self.resolve(path)
        if where.name is None:
            return Entry(where.folder or "/", is_folder=True)
        return self._file_entry(where)

    def _file_entry(self, where: HomePath) -> Entry:
        path = self._storage_path(where)
        if is_symlink(self.storage, path) or not self.storage.exists(path):
            raise _nowhere(where.text)
        return Entry(
            where.name,
            is_folder=False,
            size=self.storage.size(path),
            modified=self.storage.get_modified_time(path).timestamp(),
        )

    def open_read(self, path: str):
        """A result file of /outbox, open for reading."""
        where = self._file(path, OUTBOX)
        entry = self._file_entry(where)  # a missing file or a symlink: nowhere
        handle = self.storage.open(self._storage_path(where), "rb")
        self._log(GatewayAction.DOWNLOAD, where.text, size=entry.size)
        return handle

    # Changing /inbox

    def upload_open(self, path: str) -> "Upload":
        where = self._file(path, INBOX)
        self._not_picked_up(where)
        upload = Upload(self, where)
        self.open_uploads.add(upload)
        return upload

    def rename(self, old_path: str, new_path: str) -> None:
        old, new = self._file(old_path, INBOX), self._file(new_path, INBOX)
        self._file_entry(old)
        self._not_picked_up(old)
        if self.storage.exists(self._storage_path(new)):
            raise FileExistsError(errno.EEXIST, "A file of that name exists", new_path)
        storage_move(self.storage, self._storage_path(old), self._storage_path(new))
        self._log(GatewayAction.RENAME, f"{old.text} -> {new.text}")
        if looks_complete(new.name):
            self._receive(new, self.storage.size(self._storage_path(new)))

    def remove(self, path: str) -> None:
        where = self._file(path, INBOX)
        self._file_entry(where)
        self._not_picked_up(where)
        self.storage.delete(self._storage_path(where))
        self._log(GatewayAction.DELETE, where.text)

    def refuse(self, path: str, what: str):
        """Folders, links and attributes are not the client's to make or change."""
        raise _refused(path, f"{what} is not allowed here")

    def abort_open_uploads(self) -> None:
        """The session ended: uploads not closed by then are cut off and removed."""
        for upload in list(self.open_uploads):
            upload.abort("session ended before the file was closed")

    def _not_picked_up(self, where: HomePath) -> None:
        path = self._storage_path(where)
        if Batch.objects.filter(client=self.client, inbox_path=path, status__in=UNFINISHED):
            raise _refused(where.text, "the file is being processed")

    def _receive(self, where: HomePath, size: int) -> Batch:
        batch = batch_receive(client=self.client, name=where.name, size=size)
        logger.info(
            "Gateway %s: %s received %s as batch %s",
            self.protocol,
            self.account.username,
            where.text,
            batch.pk,
        )
        return batch

    def _log(
        self,
        action: GatewayAction,
        what: str,
        *,
        size: int | None = None,
        sha256: str | None = None,
        duration: float | None = None,
        reason: str = "",
    ) -> None:
        """Log a file operation and store it as a gateway event; a reason means it failed."""
        details = {"size": size, "sha256": sha256, "seconds": duration, "reason": reason}
        extra = "".join(f" {key}={value!r}" for key, value in details.items() if value)
        logger.info(
            "Gateway %s: %s (client %s) %s %s%s",
            self.protocol,
            self.account.username,
            self.client.client_id,
            action.label.lower(),
            what,
            extra,
        )
        gateway_event_record(
            action=action,
            protocol=self.protocol,
            address=self.address,
            username=self.account.username,
            account=self.account,
            file_name=what,
            size=size,
            sha256=sha256,
            duration=duration,
            outcome=GatewayOutcome.FAILED if reason else GatewayOutcome.OK,
            reason=reason,
        )


def looks_complete(name: str) -> bool:
    return not name.lower().endswith(IN_PROGRESS_SUFFIXES)


class UploadTooLarge(OSError):
    pass


class Upload:
    """One file being written to /inbox under a hidden name; see the module's docstring."""

    def __init__(self, home: ClientHome, where: HomePath):
        self.home, self.where = home, where
        self.temporary = home_path(home.client, INBOX, f"{UPLOAD_PREFIX}{uuid.uuid4().hex}")
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.started = time.monotonic()
        self.limit = settings.GATEWAY_MAX_FILE_BYTES
        storage = home.storage
        if isinstance(storage, FileSystemStorage):
            os.makedirs(storage.path(home_path(home.client, INBOX)), exist_ok=True)
        self.handle = storage.open(self.temporary, "wb")

    def write(self, data: bytes, offset: int) -> None:
        if offset != self.size:
            raise OSError(errno.ESPIPE, "Uploads are written from start to end, in order")
        if self.size + len(data) > self.limit:
            self.abort(f"larger than the limit of {self.limit:,} bytes")
            raise UploadTooLarge(errno.EFBIG, f"Files are limited to {self.limit:,} bytes")
        self.handle.write(data)
        self.sha256.update(data)
        self.size += len(data)

    def close(self) -> Batch | None:
        """Give the file its name; in /inbox a complete name is received as a batch."""
        if self not in self.home.open_uploads:
            return None  # aborted already
        self.home.open_uploads.discard(self)
        self.handle.close()
        final = self.home._storage_path(self.where)
        storage_move(self.home.storage, self.temporary, final)
        self.home._log(
            GatewayAction.UPLOAD,
            self.where.text,
            size=self.size,
            sha256=self.sha256.hexdigest(),
            duration=round(time.monotonic() - self.started, 3),
        )
        if looks_complete(self.where.name):
            return self.home._receive(self.where, self.size)
        return None

    def abort(self, why: str) -> None:
        self.home.open_uploads.discard(self)
        try:
            self.handle.close()
        finally:
            self.home.storage.delete(self.temporary)
        self.home._log(
            GatewayAction.UPLOAD,
            self.where.text,
            size=self.size,
            duration=round(time.monotonic() - self.started, 3),
            reason=f"cut off: {why}",
        )


def storage_move(storage, old: str, new: str) -> None:
    """Rename a file in the storage, replacing `new` (local disk and SFTP: one rename)."""
    if isinstance(storage, FileSystemStorage):
        os.replace(storage.path(old), storage.path(new))
        return
    sftp = getattr(storage, "sftp", None)
    if sftp is not None and hasattr(storage, "_remote_path"):
        sftp.posix_rename(storage._remote_path(old), storage._remote_path(new))
        return
    with storage.open(old, "rb") as content:
        if storage.exists(new):
            storage.delete(new)
        storage.save(new, File(content, name=posixpath.basename(new)))
    storage.delete(old)
