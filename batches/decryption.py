"""Decryption methods for clients' batch files, chosen per client by name.

A client's batch file reaches us wrapped by one method ("7z": an AES-256 7-Zip archive holding
one CSV; "openpgp": an OpenPGP message, batches/openpgp_decryption.py; "none": the CSV itself).
``get_decryption(name)`` returns the method, whose ``open_plaintext`` yields the CSV as a local,
seekable, fully checked file and whose ``wrap_result`` wraps the result file the same way for the
trip back. A new method is one ``Decryption`` subclass decorated with ``@register``. What a method
needs of the client (a password, keys) comes in one ``Credentials`` object, read only when the
method asks for it.

Everything the client did wrong surfaces as ``BatchFileError`` with a stable ``code``, so the
caller can write it to the result file and the admin without knowing the method.

How 7z tells a wrong password from a damaged file, since py7zr's exceptions cannot (it raises
Bad7zFile, TypeError or LZMAError for both):

1. Without the password: the signature, the start header's CRC, the file length the start header
   promises and the CRC of the next header. Any failure is CORRUPT_ARCHIVE. Since the next header
   sits at the very end of the file, a truncated upload always fails here.
2. An encrypted header that then fails to decode means WRONG_PASSWORD; a plain header that fails
   to decode means CORRUPT_ARCHIVE.
3. Where the archive stores CRCs of its packed (still encrypted) data, as py7zr's own archives
   do, a mismatch is CORRUPT_ARCHIVE before any decryption.
4. A failure while decoding the CSV (LZMA error or CRC mismatch) is CORRUPT_ARCHIVE once the
   password is known to be right, WRONG_PASSWORD otherwise. The password counts as right when
   the header was encrypted and decoded, or when the first 256 bytes of plaintext came out as
   text: AES with a wrong key yields random bytes, one in nine of them a control character.

The limits of step 4: 7-Zip's own archives carry no CRC of the packed data, so in those without
header encryption, damage to the first few hundred packed bytes (those holding the first 256
bytes of plaintext) is reported as WRONG_PASSWORD; so is damage inside an encrypted header's own
packed stream, which no password-free CRC covers. The label can be wrong in these cases, the
data never: the CSV's CRC is always checked before ``open_plaintext`` yields anything.
"""

from __future__ import annotations

import lzma
import shutil
import struct
import tempfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import BinaryIO, ClassVar

import py7zr
import py7zr.compressor
import py7zr.helpers
from py7zr.exceptions import ArchiveError, PasswordRequired, UnsupportedCompressionMethodError

_COPY_CHUNK = 1024 * 1024
_START_HEADER = struct.Struct("<6s2sIQQI")
_SIGNATURE = b"7z\xbc\xaf\x27\x1c"
# Compressed bytes handed to the decoder at a time, and plaintext bytes asked of it at a time:
# together they bound the memory one extraction uses, whatever the file's size or ratio.
_INPUT_CHUNK = 64 * 1024
_OUTPUT_CHUNK = 1024 * 1024
# py7zr's default for encrypted archives (LZMA2 preset 7) took 153 s and 213 MB RSS to wrap a
# 188 MB CSV; preset 1 takes 6 s and 36 MB for an archive a third larger.
_RESULT_FILTERS = [
    {"id": py7zr.FILTER_LZMA2, "preset": 1},
    {"id": py7zr.FILTER_CRYPTO_AES256_SHA256},
]
# Plaintext that must come out as text before a later failure is blamed on damage.
_PROOF_BYTES = 256
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
# What py7zr and the codecs under it raise for bytes they cannot decode: garbage from a wrong
# key or from damage reaches parsers that fail in many ways. OSError is left out on purpose, so
# a failing disk is never reported to a client as a wrong password.
_UNDECODABLE = (
    ArchiveError,
    lzma.LZMAError,
    zlib.error,
    EOFError,
    ValueError,
    TypeError,
    LookupError,
    struct.error,
    AssertionError,
)


class ErrorCode(StrEnum):
    WRONG_PASSWORD = "WRONG_PASSWORD"  # noqa: S105 (an error code, not a password)
    WRONG_KEY = "WRONG_KEY"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    CORRUPT_ARCHIVE = "CORRUPT_ARCHIVE"
    ARCHIVE_TOO_LARGE = "ARCHIVE_TOO_LARGE"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    TOO_MANY_LINES = "TOO_MANY_LINES"
    BAD_ARCHIVE_LAYOUT = "BAD_ARCHIVE_LAYOUT"
    NOT_ENCRYPTED = "NOT_ENCRYPTED"
    UNKNOWN_METHOD = "UNKNOWN_METHOD"


class BatchFileError(Exception):
    """A batch file we refuse, with a stable ``code`` and a ``message`` fit for the client.

    The message is our own words (and the client's own file's facts: sizes, member
    names), never a library's: what py7zr, lzma or zlib said goes in ``detail``, for
    the operators' log only.
    """

    def __init__(self, code: ErrorCode | str, message: str, *, detail: str = "") -> None:
        self.code = ErrorCode(code)
        self.message = message
        self.detail = detail
        super().__init__(f"{self.code}: {message}")


class CredentialUnavailable(Exception):
    """A secret of the client's that a method needs cannot be had: not set, or opened by no
    FIELD_ENCRYPTION_KEY. Not the file's fault: the batch fails with ``code`` and ``message``
    (fit for the client), is kept, and support can reprocess it once the cause is fixed."""

    def __init__(self, code: str, message: str, *, detail: str = "") -> None:
        self.code = code
        self.message = message
        self.detail = detail or message  # for the operators' log
        super().__init__(f"{code}: {message}")


class Credentials(ABC):
    """What a method may need from the client, each read only when the method asks for it
    (a 7z batch never reads the client's OpenPGP keys, nor an OpenPGP batch its password).

    Each may raise ``CredentialUnavailable``.
    """

    @abstractmethod
    def batch_password(self) -> str:
        """The 7z batch password."""

    @abstractmethod
    def openpgp_private_keys(self) -> list[str]:
        """The armoured private keys of the client's platform keys not retired, newest
        (the current one, which signs results) first."""

    @abstractmethod
    def openpgp_client_key(self) -> str:
        """The client's own armoured public key (results are encrypted to it, its signatures
        checked with it)."""

    @abstractmethod
    def signature_required(self) -> bool:
        """Whether an OpenPGP upload must carry a valid signature by the client's key."""


@dataclass(frozen=True)
class GivenCredentials(Credentials):
    """Credentials given as values (scripts, tests): what is not given is unavailable."""

    password: str | None = None
    private_keys: tuple[str, ...] = ()
    client_key: str | None = None
    require_signature: bool = False

    def batch_password(self) -> str:
        if self.password is None:
            raise CredentialUnavailable("PASSWORD_UNREADABLE", "no batch password given")
        return self.password

    def openpgp_private_keys(self) -> list[str]:
        return list(self.private_keys)

    def openpgp_client_key(self) -> str:
        if self.client_key is None:
            raise CredentialUnavailable("CLIENT_KEY_MISSING", "no client public key given")
        return self.client_key

    def signature_required(self) -> bool:
        return self.require_signature


@dataclass(frozen=True)
class Limits:
    """How much plaintext one batch file may unpack to.

    ``max_bytes`` is the hard bound on disk use. ``max_ratio`` refuses, before any decoding,
    archives that claim far more plaintext than their size makes plausible. LZMA2 tops out near
    6,700:1 (zeros, or one CSV row repeated); a CSV whose rows differ only in a reference number
    reaches about 1,500:1 and real client data about 10:1. 3,000 passes the first with room and
    still refuses the degenerate archives that bombs are made of.

    ``max_lines`` bounds the CSV's lines (blank ones too), counted as it is written: a small
    archive of short garbage lines is refused as soon as it passes them, before it fills
    the disk, and never becomes a rejection a line.
    """

    max_bytes: int = 2 * 1024**3
    max_ratio: int = 3000
    max_lines: int | None = None

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_ratio <= 0 or (self.max_lines or 1) <= 0:
            raise ValueError("Limits must be positive")

    def budget(self, packed_size: int) -> int:
        """The most plaintext a file of ``packed_size`` bytes may yield."""
        return min(self.max_bytes, self.max_ratio * max(packed_size, 1))


class Decryption(ABC):
    """One way a client's batch file can be wrapped; subclasses register with ``@register``."""

    name: ClassVar[str]
    result_suffix: ClassVar[str]

    @abstractmethod
    def open_plaintext(
        self, source: BinaryIO, *, credentials: Credentials, limits: Limits, workdir: Path
    ) -> AbstractContextManager[BinaryIO]:
        """Yield the CSV as a local, seekable binary file, checked in full before it is yielded.

        ``source`` is read once, front to back, so it may be a remote, unseekable stream.
        Scratch files go into a fresh directory inside ``workdir``, removed on exit.
        Raises ``BatchFileError`` for whatever is wrong with the file.
        """

    @abstractmethod
    def wrap_result(
        self,
        plaintext_path: Path,
        member_name: str,
        *,
        credentials: Credentials,
        destination: BinaryIO,
        upload_head: bytes = b"",
    ) -> None:
        """Write the file at ``plaintext_path`` to ``destination``, wrapped like the input.

        ``upload_head``: the first bytes of the client's upload (empty when it was never
        read), for a method that answers in the same form (OpenPGP: armoured or binary).
        """

    def result_ending(self, upload_head: bytes = b"") -> str:
        """The result file's name after ``.result`` (``.csv`` for a file left as it is)."""
        return self.result_suffix or ".csv"


METHODS: dict[str, type[Decryption]] = {}


def register(cls: type[Decryption]) -> type[Decryption]:
    """Class decorator making a method available to ``get_decryption`` under ``cls.name``."""
    METHODS[cls.name] = cls
    return cls


def get_decryption(name: str) -> Decryption:
    try:
        return METHODS[name]()
    except KeyError:
        known = ", ".join(sorted(METHODS))
        raise BatchFileError(
            ErrorCode.UNKNOWN_METHOD, f"unknown decryption method {name!r} (known: {known})"
        ) from None


# --- 7-Zip keys derived once a batch --------------------------------------------------

_derive_key = py7zr.helpers.calculate_key  # py7zr's own, whatever is installed meanwhile
_derived_keys: ContextVar[dict | None] = ContextVar("derived_7z_keys", default=None)


def _derive_key_once(password: bytes, cycles: int, salt: bytes, digest: str) -> bytes:
    keys = _derived_keys.get()
    if keys is None:
        return _derive_key(password, cycles, salt, digest)
    arguments = (password, cycles, salt, digest)
    if arguments not in keys:
        keys[arguments] = _derive_key(*arguments)
    return keys[arguments]


@contextmanager
def keys_derived_once() -> Iterator[None]:
    """Within the block, py7zr derives the AES key of each password once.

    7-Zip's key derivation is 2^19 rounds of SHA-256, 0.3 s in py7zr, which runs it for
    an archive's encrypted header, again for its data, and twice more to encrypt the
    result file; 7-Zip and py7zr use no salt, so it is the same key each time. The keys
    are forgotten when the block ends. Relies on py7zr 1.1.4 calling
    ``py7zr.compressor.calculate_key``, like the rest of this module on its internals.
    """
    py7zr.compressor.calculate_key = _derive_key_once  # outside a block, the same as before
    keys = {}
    token = _derived_keys.set(keys)
    try:
        yield
    finally:
        keys.clear()  # a context copied inside the block holds the same dict
        _derived_keys.reset(token)


@register
class NoDecryption(Decryption):
    """The client sends the CSV as is."""

    name = "none"
    result_suffix = ""

    @contextmanager
    def open_plaintext(
        self, source: BinaryIO, *, credentials: Credentials, limits: Limits, workdir: Path
    ) -> Iterator[BinaryIO]:
        with _scratch_dir(workdir) as scratch:
            path = scratch / "plaintext.csv"
            with path.open("wb") as out:
                _copy_within(source, out, limits)
            with path.open("rb") as plaintext:
                yield plaintext

    def wrap_result(
        self,
        plaintext_path: Path,
        member_name: str,
        *,
        credentials: Credentials,
        destination: BinaryIO,
        upload_head: bytes = b"",
    ) -> None:
        with plaintext_path.open("rb") as plaintext:
            shutil.copyfileobj(plaintext, destination, _COPY_CHUNK)


class ExtractingDecryption(Decryption):
    """A method that reads the client's file from local disk (read in place when it is
    local, else copied to the scratch space first) and extracts the CSV next to it."""

    @abstractmethod
    def extract(
        self, packed: Path, plaintext_path: Path, *, credentials: Credentials, limits: Limits
    ) -> None:
        """Write the CSV held by the file at ``packed`` to ``plaintext_path``, checked in full,
        or raise BatchFileError."""

    @contextmanager
    def open_plaintext(
        self, source: BinaryIO, *, credentials: Credentials, limits: Limits, workdir: Path
    ) -> Iterator[BinaryIO]:
        with _scratch_dir(workdir) as scratch:
            packed = _local_file(source, scratch / f"source.{self.name}")
            plaintext_path = scratch / "plaintext.csv"
            self.extract(packed, plaintext_path, credentials=credentials, limits=limits)
            with plaintext_path.open("rb") as plaintext:
                yield plaintext


@register
class SevenZipDecryption(ExtractingDecryption):
    """An AES-256 7-Zip archive holding exactly one CSV, headers encrypted or not.

    An archive whose CSV is not encrypted is refused (NOT_ENCRYPTED): the client agreed to
    encrypt its customers' data, and its unencrypted copy would otherwise be kept in the
    archive folder. The member's name is only checked for its ``.csv`` ending and never used
    as a path, so names like ``../../x.csv`` are harmless and accepted.

    Relies on py7zr internals (``ArchiveFile.folder``, ``Folder.get_decompressor``, the
    header's pack info) to stream one member in bounded chunks: py7zr's own extraction asks
    for up to 128 MB at a time and peaked at 305 MB RSS on a 129 MB CSV. Pinned to
    py7zr 1.1.4; its tests show when an upgrade breaks this. What memory remains is the LZMA
    dictionary the client's 7-Zip chose (16 MB at its default level, 64 MB at -mx9), filled
    only as far as the CSV's size.
    """

    name = "7z"
    result_suffix = ".7z"

    def extract(
        self, packed: Path, plaintext_path: Path, *, credentials: Credentials, limits: Limits
    ) -> None:
        password = credentials.batch_password()
        _extract_csv(packed, plaintext_path, password=password, limits=limits)

    def wrap_result(
        self,
        plaintext_path: Path,
        member_name: str,
        *,
        credentials: Credentials,
        destination: BinaryIO,
        upload_head: bytes = b"",
    ) -> None:
        """AES-256 with header encryption, spooled to a local file because 7z writes seek back."""
        arcname = _safe_member_name(member_name)
        password = credentials.batch_password()
        with tempfile.TemporaryFile(dir=plaintext_path.parent) as spool:
            with py7zr.SevenZipFile(
                spool, "w", filters=_RESULT_FILTERS, password=password, header_encryption=True
            ) as out:
                out.write(plaintext_path, arcname)
            spool.seek(0)
            shutil.copyfileobj(spool, destination, _COPY_CHUNK)


@contextmanager
def _scratch_dir(workdir: Path) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="batch-", dir=workdir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _local_file(source: BinaryIO, copy_path: Path) -> Path:
    """The path of ``source`` if it is a local file, else of its copy made at ``copy_path``."""
    path = _local_path(source)
    if path is None:
        path = copy_path
        with path.open("wb") as copy:
            shutil.copyfileobj(source, copy, _COPY_CHUNK)
    return path


def _local_path(source: BinaryIO) -> Path | None:
    """The path of `source` if it is a local file opened as is: read in place, not copied
    a second time into the scratch space."""
    name = getattr(source, "name", None)
    if not isinstance(name, str) or not hasattr(source, "fileno"):
        return None
    path = Path(name)
    return path if path.is_file() and source.tell() == 0 else None


def _copy_within(source: BinaryIO, out: BinaryIO, limits: Limits) -> None:
    copied, lines = 0, _LineCount(limits.max_lines)
    while chunk := source.read(_COPY_CHUNK):
        copied += len(chunk)
        if copied > limits.max_bytes:
            raise BatchFileError(
                ErrorCode.ARCHIVE_TOO_LARGE,
                f"the file exceeds the limit of {limits.max_bytes:,} bytes",
            )
        lines.add(chunk)
        out.write(chunk)


class _LineCount:
    """Counts a CSV's lines as it is written (blank ones too, as the parser numbers them);
    BatchFileError TOO_MANY_LINES as soon as it has more than `max_lines` (None: no limit)."""

    def __init__(self, max_lines: int | None) -> None:
        self._max_lines = max_lines
        self._breaks = 0
        self._line_open = False  # bytes after the last line break: one more line

    def add(self, chunk: bytes) -> None:
        if self._max_lines is None or not chunk:
            return
        self._breaks += chunk.count(b"\n")
        self._line_open = not chunk.endswith(b"\n")
        if self._breaks + self._line_open > self._max_lines:
            raise BatchFileError(
                ErrorCode.TOO_MANY_LINES,
                f"the CSV has more than {self._max_lines:,} lines (blank lines count); "
                f"split it into files of at most {self._max_lines:,} lines",
            )


def _safe_member_name(member_name: str) -> str:
    """The last path component only, so a result archive never carries a directory path."""
    name = PurePosixPath(member_name.replace("\\", "/")).name
    if name in ("", ".", ".."):
        raise ValueError(f"not a file name: {member_name!r}")
    return name


def _corrupt(message: str, cause: Exception | None = None) -> BatchFileError:
    """CORRUPT_ARCHIVE in our words; the library's own (`cause`) kept for the log."""
    detail = f"{type(cause).__name__}: {cause}" if cause is not None else ""
    return BatchFileError(ErrorCode.CORRUPT_ARCHIVE, message, detail=detail)


def _wrong_password() -> BatchFileError:
    return BatchFileError(
        ErrorCode.WRONG_PASSWORD, "the archive cannot be decrypted with the batch password"
    )


def _extract_csv(archive_path: Path, plaintext_path: Path, *, password: str, limits: Limits):
    """Check, open and extract the archive's one CSV to ``plaintext_path``, or raise."""
    packed_size = archive_path.stat().st_size
    with archive_path.open("rb") as fp:
        _check_integrity(fp, packed_size)
        header_encrypted = _header_needs_password(fp)
        try:
            archive = _open_archive(fp, password)
        except _UNDECODABLE as exc:
            if header_encrypted:
                raise _wrong_password() from exc
            raise _corrupt("the archive's header cannot be read", exc) from exc
        with archive:
            member = _single_csv_member(archive)
            _check_encrypted(member)
            _check_declared_size(member.uncompressed, packed_size, limits)
            with plaintext_path.open("wb") as out:
                if not member.emptystream:
                    _check_packed_crc(archive, member)
                    sink = _PlaintextSink(
                        out, limits.budget(packed_size), member.uncompressed, limits.max_lines
                    )
                    _decode_member(archive, member, sink, header_encrypted)


def _check_integrity(fp: BinaryIO, size: int) -> None:
    """The checks 7z allows without the password: start header, file length, next header."""
    raw = fp.read(_START_HEADER.size)
    if len(raw) < _START_HEADER.size or not raw.startswith(_SIGNATURE):
        raise _corrupt("the file is not a 7z archive")
    _, _, start_crc, offset, length, next_crc = _START_HEADER.unpack(raw)
    if zlib.crc32(raw[12:]) != start_crc:
        raise _corrupt("the archive's start header is damaged (CRC mismatch)")
    expected = _START_HEADER.size + offset + length
    if expected > size:
        raise _corrupt(f"the archive is truncated: {size:,} bytes where {expected:,} are expected")
    if length == 0:
        raise BatchFileError(ErrorCode.BAD_ARCHIVE_LAYOUT, "the archive is empty")
    fp.seek(_START_HEADER.size + offset)
    if _crc32_of(fp, length) != next_crc:
        raise _corrupt("the archive's header is damaged (CRC mismatch)")


def _crc32_of(fp: BinaryIO, length: int) -> int:
    crc = 0
    while length > 0:
        chunk = fp.read(min(length, _COPY_CHUNK))
        if not chunk:
            raise _corrupt("the archive is truncated")
        crc = zlib.crc32(chunk, crc)
        length -= len(chunk)
    return crc


def _open_archive(fp: BinaryIO, password: str | None) -> py7zr.SevenZipFile:
    fp.seek(0)
    return py7zr.SevenZipFile(fp, password=password)


def _header_needs_password(fp: BinaryIO) -> bool:
    """Whether the header is encrypted: py7zr asks for a password exactly then."""
    try:
        _open_archive(fp, None).close()
    except PasswordRequired:
        return True
    except _UNDECODABLE:
        return False
    return False


def _single_csv_member(archive: py7zr.SevenZipFile):
    files = [member for member in archive.files if not member.is_directory]
    names = ", ".join(member.filename for member in files[:5]) + (", …" if len(files) > 5 else "")
    if not any(member.filename.lower().endswith(".csv") for member in files):
        raise BatchFileError(
            ErrorCode.BAD_ARCHIVE_LAYOUT, f"the archive holds no .csv file (found: {names or '-'})"
        )
    if len(files) > 1:
        raise BatchFileError(
            ErrorCode.BAD_ARCHIVE_LAYOUT,
            f"the archive must hold one .csv file and nothing else; it holds {len(files)}: {names}",
        )
    return files[0]


def _check_encrypted(member) -> None:
    """Refuse a CSV stored without AES: every coder of its folder is a compressor."""
    if member.emptystream:
        return  # no data to protect
    if not py7zr.compressor.SupportedMethods.needs_password(member.folder.coders):
        raise BatchFileError(
            ErrorCode.NOT_ENCRYPTED,
            "the archive is not encrypted: batch files must be 7-Zip archives encrypted "
            "(AES-256) with the batch password",
        )


def _check_declared_size(declared: int, packed_size: int, limits: Limits) -> None:
    """Refuse on the header's word, before writing a byte; extraction counts again."""
    if declared > limits.max_bytes:
        raise BatchFileError(
            ErrorCode.ARCHIVE_TOO_LARGE,
            f"the CSV is {declared:,} bytes uncompressed; the limit is {limits.max_bytes:,}",
        )
    if declared > limits.max_ratio * packed_size:
        raise BatchFileError(
            ErrorCode.ARCHIVE_TOO_LARGE,
            f"the CSV would unpack to {declared:,} bytes from {packed_size:,} "
            f"(more than {limits.max_ratio:,}:1), which is refused as a likely archive bomb",
        )


def _packed_range(archive: py7zr.SevenZipFile, folder) -> tuple[int, int, int | None]:
    """Start, size and stored CRC (None when absent) of a folder's packed stream."""
    main = archive.header.main_streams
    packinfo = main.packinfo
    index = main.unpackinfo.folders.index(folder)
    start = archive.afterheader + packinfo.packpos + packinfo.packpositions[index]
    all_crcs = len(packinfo.crcs) == len(packinfo.packsizes) == len(main.unpackinfo.folders)
    return start, packinfo.packsizes[index], packinfo.crcs[index] if all_crcs else None


def _check_packed_crc(archive: py7zr.SevenZipFile, member) -> None:
    """Damage to the encrypted bytes themselves, caught before the password is tried."""
    start, size, crc = _packed_range(archive, member.folder)
    if crc is None:
        return
    archive.fp.seek(start)
    if _crc32_of(archive.fp, size) != crc:
        raise _corrupt("the archive's data is damaged (CRC mismatch of the packed data)")


class _MeteredInput:
    """Gives py7zr's decoder compressed bytes only after it answered short of what was asked.

    py7zr reads a fresh block on every call, even while its LZMA decoder still holds unread
    input; asked for small chunks of a well-compressed file, it would pile the input up.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.hungry = True

    def read(self, size: int) -> bytes:
        return self._raw.read(min(size, _INPUT_CHUNK)) if self.hungry else b""


def _member_chunks(archive: py7zr.SevenZipFile, member) -> Iterator[bytes]:
    """The member's plaintext in chunks of at most ``_OUTPUT_CHUNK`` bytes.

    The first chunk is only ``_PROOF_BYTES`` long: a decoding error loses the whole chunk it
    occurs in, and the text proof must be out before damage further on is reached.
    """
    decompressor = member.folder.get_decompressor(member.compressed, reset=True)
    archive.fp.seek(_packed_range(archive, member.folder)[0])
    feed = _MeteredInput(archive.fp)
    remaining = member.uncompressed
    wanted = min(remaining, _PROOF_BYTES)
    while remaining > 0:
        consumed = decompressor.consumed
        chunk = decompressor.decompress(feed, wanted)
        if not chunk and feed.hungry and decompressor.consumed == consumed:
            raise py7zr.Bad7zFile("the packed data ends before the CSV does")
        feed.hungry = len(chunk) < wanted
        remaining -= len(chunk)
        wanted = min(remaining, _OUTPUT_CHUNK)
        yield chunk


class _PlaintextSink:
    """Writes plaintext out, tracking its size against the budget, its CRC and its first bytes."""

    def __init__(self, out: BinaryIO, budget: int, declared: int, max_lines: int | None) -> None:
        self._out = out
        self._budget = budget
        self._lines = _LineCount(max_lines)
        self._prefix = b""
        self._prefix_wanted = min(_PROOF_BYTES, declared)
        self.written = 0
        self.crc = 0

    def write(self, chunk: bytes) -> None:
        self.written += len(chunk)
        if self.written > self._budget:
            raise BatchFileError(
                ErrorCode.ARCHIVE_TOO_LARGE,
                f"the CSV unpacked past the limit of {self._budget:,} bytes while extracting",
            )
        if len(self._prefix) < self._prefix_wanted:
            self._prefix += chunk[: self._prefix_wanted - len(self._prefix)]
        self.crc = zlib.crc32(chunk, self.crc)
        self._lines.add(chunk)
        self._out.write(chunk)

    @property
    def reads_as_text(self) -> bool:
        """Whether the first bytes came out with no control characters but tab, CR and LF."""
        complete = len(self._prefix) == self._prefix_wanted > 0
        return complete and len(self._prefix.translate(None, _CONTROL_BYTES)) == len(self._prefix)


def _decode_member(archive: py7zr.SevenZipFile, member, sink: _PlaintextSink, proven: bool) -> None:
    """Decode into ``sink``; blame damage once the password is proven, the password otherwise."""
    try:
        for chunk in _member_chunks(archive, member):
            sink.write(chunk)
    except UnsupportedCompressionMethodError as exc:
        raise _corrupt(
            "the archive uses a method we cannot read; 7-Zip's defaults (LZMA2, AES-256) can be",
            exc,
        ) from exc
    except _UNDECODABLE as exc:
        if proven or sink.reads_as_text:
            raise _corrupt("the archive's data is damaged", exc) from exc
        raise _wrong_password() from exc
    if member.crc32 is not None and sink.crc != member.crc32:
        if proven or sink.reads_as_text:
            raise _corrupt("the archive's data is damaged (CRC mismatch of the CSV)")
        raise _wrong_password()
