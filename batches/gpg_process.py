"""The one place batch files meet Debian's gpg program: run as a subprocess, its output streamed.

python-gnupg's ``decrypt_file`` writes the whole plaintext before it answers, so no limit can
stop a compressed bomb while it unpacks; here gpg's stdout goes to a callback chunk by chunk
(which may raise to stop it: gpg is killed), its ``--status-fd`` lines come on a pipe of their
own, and the whole run has a deadline. Every run is in a throwaway home (``gnupg_home()``)
holding only the keys of one operation; the options below keep gpg from asking for anything
(a passphrase, a key server, a trust decision) so it never waits for input.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

GPG = "gpg"
# Never prompt, never read a config file, never reach the network; keys are chosen by
# fingerprint, so gpg's web of trust has nothing to add ("always").
SAFE_OPTIONS = (
    "--batch",
    "--no-tty",
    "--no-options",
    "--no-greeting",
    "--quiet",
    "--pinentry-mode",
    "error",
    "--no-symkey-cache",
    "--disable-dirmngr",
    "--no-auto-key-retrieve",
    "--trust-model",
    "always",
)
_READ_CHUNK = 1024 * 1024
# A message with thousands of signatures is no batch file: past this, the run is refused.
MAX_STATUS_LINES = 4096
_STDERR_KEPT = 8 * 1024


# gpg's errors that are the platform's fault, not the file's (libgpg-error's codes, the low
# 16 bits of an ERROR or FAILURE status's last word): no agent running, agent error.
_AGENT_ERROR_CODES = {119, 120}
_PLATFORM_FAULTS = re.compile(
    r"^gpg: .*(can't connect to the agent|no agent running|agent error|"
    r"no space left on device|disk quota exceeded)",
    re.IGNORECASE | re.MULTILINE,
)


class GpgFailed(RuntimeError):
    """gpg failed for a reason of the platform's (killed by a signal we did not send, its agent
    gone, a full disk), not the file's: the run fails and is tried again, as any run error."""


@dataclass
class GpgRun:
    """What gpg said: its exit code, its status lines (the words after ``[GNUPG:]``) and the
    end of its stderr, which is for the operators' log only."""

    returncode: int
    status: list[list[str]] = field(default_factory=list)
    stderr: str = ""
    status_overflow: bool = False

    def has(self, keyword: str) -> bool:
        return any(words[0] == keyword for words in self.status)

    def args(self, keyword: str) -> list[list[str]]:
        """The arguments of every status line with this keyword."""
        return [words[1:] for words in self.status if words[0] == keyword]

    @property
    def detail(self) -> str:
        """A bounded account for the log: exit code, status keywords, stderr's end."""
        keywords = " ".join(words[0] for words in self.status[:200])
        return f"gpg exit {self.returncode}; status: {keywords}; stderr: {self.stderr[-2000:]}"


def gpg_run(
    home: str | Path,
    args: Sequence[str],
    *,
    seconds: float,
    on_output: Callable[[bytes], None] | None = None,
) -> GpgRun:
    """Run ``gpg --homedir home SAFE_OPTIONS --status-fd N args`` to its end.

    stdout goes to ``on_output`` chunk by chunk (discarded without one); whatever it raises
    kills gpg and propagates. TimeoutError (gpg killed) when the run takes over ``seconds``.
    """
    os.utime(home)  # a home in use is never swept as a dead process's (gnupg_homes_sweep)
    status_read, status_write = os.pipe()
    command = [GPG, "--homedir", str(home), *SAFE_OPTIONS, "--status-fd", str(status_write)]
    try:
        process = subprocess.Popen(  # noqa: S603 (a fixed program, our own arguments)
            [*command, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(status_write,),
        )
    finally:
        os.close(status_write)
    try:
        run = _collect(process, status_read, time.monotonic() + seconds, on_output)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()
        os.close(status_read)
    run.returncode = process.returncode
    fault = platform_fault(run)
    if fault:
        raise GpgFailed(f"{fault}: {run.detail}")
    return run


def platform_fault(run: GpgRun) -> str | None:
    """Why the run failed for a reason of the platform's, if it did. A gpg we killed (a limit,
    the deadline) never gets here: its run raised already."""
    if run.returncode < 0:
        return f"gpg was killed by signal {-run.returncode}"
    for args in run.args("ERROR") + run.args("FAILURE"):
        if args and args[-1].isdigit() and int(args[-1]) & 0xFFFF in _AGENT_ERROR_CODES:
            return f"gpg's agent failed ({' '.join(args)})"
    found = _PLATFORM_FAULTS.search(run.stderr)
    return f"gpg failed on the platform's side ({found.group(1)})" if found else None


def _collect(process, status_fd: int, deadline: float, on_output) -> GpgRun:
    """Read stdout, stderr and the status pipe as they come, until all three are closed."""
    run = GpgRun(returncode=-1)
    status_buffer, stderr = b"", b""
    stdout_fd, stderr_fd = process.stdout.fileno(), process.stderr.fileno()
    with selectors.DefaultSelector() as selector:
        for fd in (stdout_fd, stderr_fd, status_fd):
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("gpg did not finish in time")
            for key, _ in selector.select(timeout=remaining):
                chunk = os.read(key.fd, _READ_CHUNK)
                if not chunk:
                    selector.unregister(key.fd)
                elif key.fd == stdout_fd:
                    if on_output is not None:
                        on_output(chunk)
                elif key.fd == stderr_fd:
                    stderr = (stderr + chunk)[-_STDERR_KEPT:]
                else:
                    *lines, status_buffer = (status_buffer + chunk).split(b"\n")
                    _add_status(run, lines)
    _add_status(run, [status_buffer])
    run.stderr = stderr.decode("utf-8", "replace")
    return run


def _add_status(run: GpgRun, lines: Iterable[bytes]) -> None:
    for line in lines:
        words = line.decode("utf-8", "replace").split()
        if len(words) < 2 or words[0] != "[GNUPG:]":
            continue
        if len(run.status) >= MAX_STATUS_LINES:
            run.status_overflow = True
            return
        run.status.append(words[1:])


def gpg_import(home: str | Path, armoured: str, *, seconds: float) -> str:
    """Import one key (public or secret) into the home; returns its primary fingerprint."""
    key_file = Path(home) / f"import-{os.urandom(6).hex()}.asc"
    key_file.write_text(armoured)
    try:
        run = gpg_run(home, ["--import", str(key_file)], seconds=seconds)
    finally:
        key_file.unlink()
    imported = run.args("IMPORT_OK")
    if run.returncode != 0 or not imported:
        raise RuntimeError(f"gpg could not import a key: {run.detail}")
    return imported[0][1]
