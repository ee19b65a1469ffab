"""Checking a batch's lines, a chunk at a time: parsed, then validated as the API would.

The checking is pure Python (no database) and costs about as much as storing
the lines; it ends with the valid lines encoded for storing
(notifications.intake.notifications_encode). It runs in a child process of
its own, forked from the ingesting process, ahead of it by what the pipe holds. A
thread would share the interpreter's lock with the storing: measured on
100,000 lines, storing alone took 6.9 s, and with a checking thread beside it
11.5 s.

The child is forked, not started through multiprocessing: a django-q2 worker
is a daemonic process, and multiprocessing refuses children to those. Forked
once the schemas are read, the child inherits them and the open plaintext file;
it closes every other inherited file at once (the database connection's socket
above all) and leaves through os._exit, so that nothing of the parent's is
closed or flushed twice. It ends when its work is done, when the parent stops
reading (a broken pipe) or by the parent's SIGKILL when the parent stops early;
a parent waiting for a chunk notices a child that died. Where there is no
fork (Windows), the lines are checked in the ingesting thread itself.
"""

import contextlib
import gc
import os
import signal
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import Pipe

from batches.models import Batch
from batches.parsing import ParsedLine, parse_lines
from clients.parameter_validation import LINE_PARAMETERS
from notifications.bulk_insert import EncodedNotifications
from notifications.intake import (
    IntakeError,
    ValidNotification,
    application_schema,
    notification_validate,
    notifications_encode,
)


@dataclass
class Rejection:
    line: int
    reference: str
    code: str
    message: str


@dataclass
class CheckedChunk:
    """A chunk of lines, checked: the valid ones encoded for storing, the others rejected."""

    lines: int  # read in this chunk, blank lines left out
    valid: EncodedNotifications
    rejections: list[Rejection]
    last_line: int
    bytes_read: int  # of the plaintext, so far


def duplicate_reference(line: int, reference: str) -> Rejection:
    return Rejection(
        line,
        reference,
        "DUPLICATE_REFERENCE",
        f"clientNotifRefId {reference!r} was already used.",
    )


# The database's own words name its types and columns (and may quote SQL): the log has them.
UNSTORABLE_MESSAGE = (
    "The database refused a value of this line (one longer, or of another form, than the "
    "platform stores); the platform's operators have the detail."
)


def unstorable_value(line: int, reference: str) -> Rejection:
    """A line whose values passed the checks and that the database refused all the same."""
    return Rejection(line, reference, "UNSTORABLE_VALUE", UNSTORABLE_MESSAGE)


# How often the parent, waiting for a chunk, makes sure the child is still alive.
CHILD_LOOK_SECONDS = 5


class LineCheckerFailed(RuntimeError):
    """The child process checking the lines failed or died; the message says how."""


class LineChecker:
    """Turns parsed lines into valid notifications or rejections, for one client's batch."""

    def __init__(self, batch: Batch):
        self.client = batch.client
        # Read now: `check` runs in the child process and touches no database.
        self.schemas = {
            code: application_schema(self.client, code)
            for code in self.client.applications.values_list("code", flat=True)
        }

    def check(self, parsed: ParsedLine) -> ValidNotification | Rejection:
        tokens = parsed.tokens
        if tokens is None:
            return Rejection(parsed.number, "", parsed.error_code, parsed.error_message)
        reference = tokens.get("clientNotifRefId", "")
        client_id = tokens.get("clientId", "")
        if client_id != self.client.client_id:
            message = (
                f"clientId {client_id!r} is not the client of this inbox ({self.client.client_id})."
                if client_id
                else "clientId is missing."
            )
            return Rejection(parsed.number, reference, "CLIENT_MISMATCH", message)
        code = tokens.get("appType", "")
        try:
            valid = notification_validate(
                client=self.client,
                schema=self.schemas.get(code),
                application_code=code,
                reference=reference,
                # Every token but the platform parameters a line carries (inline: once a line).
                values={k: v for k, v in tokens.items() if k not in LINE_PARAMETERS},
                send_at=tokens.get("sendAt", ""),
                expires_at=tokens.get("expiresAt", ""),
            )
        except IntakeError as exc:
            return Rejection(parsed.number, reference, exc.code, _message(exc))
        valid.batch_line = parsed.number
        return valid


def _message(error: IntakeError) -> str:
    if not error.errors:
        return error.message
    return "; ".join(f"{name}: {' '.join(problems)}" for name, problems in error.errors.items())


def checked_chunks(
    plaintext, *, start_after: int, checker: LineChecker, chunk_lines: int
) -> Iterator[CheckedChunk]:
    """The lines after `start_after`, checked, `chunk_lines` at a time.

    Use it with contextlib.closing(): stopping early then stops the child at once.
    """
    if not hasattr(os, "fork"):
        yield from _chunks(plaintext, start_after, checker, chunk_lines)
        return
    reader, writer = Pipe(duplex=False)
    _widen(writer)
    try:
        pid = os.fork()
    except OSError:
        reader.close()
        writer.close()
        raise
    if pid == 0:  # the child: never returns
        reader.close()
        _child(writer, plaintext, _chunks(plaintext, start_after, checker, chunk_lines))
    writer.close()
    try:
        while True:
            kind, content = _receive(reader, pid)
            if kind == "end":
                return
            if kind == "failed":
                raise LineCheckerFailed(f"The line-checking process failed:\n{content}")
            yield content
    finally:
        reader.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


# What the pipe holds: about two chunks of 2,000 lines. The checker then works ahead while
# the storing takes longer over a chunk than usual, rather than wait for it to read.
PIPE_BYTES = 1024 * 1024


def _widen(writer) -> None:
    """Make the pipe hold PIPE_BYTES where the system allows (Linux; 64 KiB otherwise)."""
    with contextlib.suppress(ImportError, AttributeError, OSError):
        import fcntl

        fcntl.fcntl(writer.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _receive(reader, pid: int):
    """The child's next message; LineCheckerFailed if it died instead."""
    while not reader.poll(CHILD_LOOK_SECONDS):
        # WNOWAIT: looked at, not reaped, so the pid stays ours until the final waitpid.
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            raise LineCheckerFailed("The line-checking process ended without a word.")
    try:
        return reader.recv()
    except (EOFError, OSError):  # OSError: it died in the middle of a message
        raise LineCheckerFailed("The line-checking process ended without a word.") from None


def _chunks(plaintext, start_after: int, checker: LineChecker, chunk_lines: int):
    chunk: list[ParsedLine] = []
    for parsed in parse_lines(plaintext, start_after=start_after):
        chunk.append(parsed)
        if len(chunk) >= chunk_lines:
            yield _checked(chunk, checker, plaintext)
            chunk = []
    if chunk:
        yield _checked(chunk, checker, plaintext)


def _checked(chunk: list[ParsedLine], checker: LineChecker, plaintext) -> CheckedChunk:
    valid, rejections = [], []
    for parsed in chunk:
        checked = checker.check(parsed)
        (rejections if isinstance(checked, Rejection) else valid).append(checked)
    encoded, repeated = notifications_encode(valid)
    rejections += [duplicate_reference(item.batch_line, item.reference) for item in repeated]
    return CheckedChunk(len(chunk), encoded, rejections, chunk[-1].number, plaintext.tell())


def _child(writer, plaintext, chunks) -> None:
    """Send each chunk to the parent, then "end"; leave without any of the parent's clean-up."""
    status = 1
    try:
        # Only the pipe, the plaintext and the standard streams stay open: the database
        # connection inherited from the parent, above all, must never be written to.
        _close_inherited_files(keep={writer.fileno(), plaintext.fileno()})
        # The parent's handlers (a worker's, say) are not this process's business; a
        # signal the parent ignores (a qcluster worker ignores SIGINT) stays ignored.
        for number in (signal.SIGTERM, signal.SIGINT):
            if callable(signal.getsignal(number)):
                signal.signal(number, signal.SIG_DFL)
        # The parent's objects (Django, the whole app) are out of the collector's sight: its
        # full collections went over all of them again and again, a sixth of the checking
        # (callgrind), and wrote to their pages, which the fork then had to copy.
        gc.freeze()
        for chunk in chunks:
            writer.send(("chunk", chunk))
        writer.send(("end", None))
        status = 0
    except BrokenPipeError:
        pass  # the parent stopped reading: nothing to tell
    except BaseException:
        with contextlib.suppress(BaseException):
            writer.send(("failed", traceback.format_exc()))
    finally:
        os._exit(status)


def _close_inherited_files(keep: set[int]) -> None:
    start = 3
    for descriptor in sorted(keep):
        if descriptor >= start:
            os.closerange(start, descriptor)
            start = descriptor + 1
    os.closerange(start, os.sysconf("SC_OPEN_MAX"))
