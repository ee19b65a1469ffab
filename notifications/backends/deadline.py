"""A total deadline for a blocking call whose library only offers a timeout per operation.

smtplib's timeout bounds each socket read and write: a server that answers one
byte every few seconds keeps a send going for as long as it likes. Within
`deadline(seconds, abort)`, a watchdog thread calls `abort()` once the time is
up; `abort` shuts the call's socket down, which makes the blocked call fail at
once. One watchdog thread per process serves every deadline.
"""

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)


@contextmanager
def deadline(seconds: float, abort: Callable[[], None]) -> Iterator[None]:
    """Run the block; if it is still running after `seconds`, call `abort()` from another thread."""
    token = _watchdog().arm(time.monotonic() + seconds, abort)
    try:
        yield
    finally:
        _watchdog().disarm(token)


class _Watchdog:
    def __init__(self):
        self._condition = threading.Condition()
        self._due: list[tuple[float, int]] = []  # a heap of (when, token)
        self._aborts: dict[int, Callable[[], None]] = {}  # armed deadlines, by token
        self._tokens = itertools.count()
        threading.Thread(target=self._run, name="kokatto-deadline", daemon=True).start()

    def arm(self, when: float, abort: Callable[[], None]) -> int:
        with self._condition:
            token = next(self._tokens)
            self._aborts[token] = abort
            heapq.heappush(self._due, (when, token))
            if self._due[0][1] == token:
                self._condition.notify()
            return token

    def disarm(self, token: int) -> None:
        with self._condition:
            self._aborts.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._condition:
                abort = self._next_expired()
            if abort is not None:
                try:
                    abort()
                except Exception:
                    logger.exception("Aborting a call past its deadline failed")

    def _next_expired(self) -> Callable[[], None] | None:
        """Wait (holding the condition) for a deadline to pass: its abort, or None to look again."""
        # Deadlines disarmed before they came due are dropped here.
        while self._due and self._due[0][1] not in self._aborts:
            heapq.heappop(self._due)
        if not self._due:
            self._condition.wait()
            return None
        when, token = self._due[0]
        wait = when - time.monotonic()
        if wait > 0:
            self._condition.wait(wait)
            return None
        heapq.heappop(self._due)
        return self._aborts.pop(token)


_watchdogs: dict[int, _Watchdog] = {}
_watchdogs_lock = threading.Lock()


def _watchdog() -> _Watchdog:
    # Keyed by pid: a forked worker has no thread of its parent's, so it starts its own.
    pid = os.getpid()
    watchdog = _watchdogs.get(pid)
    if watchdog is None:
        with _watchdogs_lock:
            watchdog = _watchdogs.get(pid) or _Watchdog()
            _watchdogs.clear()
            _watchdogs[pid] = watchdog
    return watchdog
