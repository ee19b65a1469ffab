"""A total deadline for a blocking call whose library only offers a timeout per operation.

smtplib's and http.client's timeouts bound each socket read: a peer that sends one
byte every few seconds keeps a call going for as long as it likes. A Deadline is
given to the process's watchdog thread with an `abort` (shut the call's socket
down), which the thread calls once the deadline passes: the blocked call then
fails at once. The email backend and the HTTP client share it.

Deadlines are kept in a heap; one finished in time stays there until the thread
next wakes, so a call costs a push and two short lock holds, not a wake-up.
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


class Deadline:
    """When one call must be over, and whether it was cut."""

    __slots__ = ("abort", "expired", "finished", "when")

    def __init__(self, seconds: float):
        self.when = time.monotonic() + seconds
        self.abort: Callable[[], None] | None = None
        self.expired = False
        self.finished = False


@contextmanager
def deadline(seconds: float, abort: Callable[[], None]) -> Iterator[Deadline]:
    """Run the block; if it is still running after `seconds`, call `abort()` from the
    watchdog thread. The Deadline it yields says afterwards whether that happened."""
    current = Deadline(seconds)
    watchdog().watch(current, abort)
    try:
        yield current
    finally:
        watchdog().finish(current)


class Watchdog:
    """One thread a process that aborts every call past its deadline."""

    def __init__(self):
        # Callers take the plain lock (cheaper than the condition's wrapper), which is
        # also the condition's: the thread waits on it.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline, abort: Callable[[], None]) -> None:
        """Call `abort` when `deadline` passes, unless it is finished by then."""
        with self._lock:
            if deadline.finished:
                return
            deadline.abort = abort
            if time.monotonic() >= deadline.when:
                self._expire(deadline)
                return
            heapq.heappush(self._heap, (deadline.when, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kokatto-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._wake.notify()

    def finish(self, deadline: Deadline) -> bool:
        """Stop watching `deadline`; returns whether it had passed (the call was aborted)."""
        with self._lock:
            deadline.finished = True
            return deadline.expired

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                when, _, deadline = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._expire(deadline)

    @staticmethod
    def _expire(deadline: Deadline) -> None:
        deadline.expired = True
        try:
            deadline.abort()
        except Exception:
            logger.exception("Aborting a call past its deadline failed")


_watchdog = Watchdog()


def watchdog() -> Watchdog:
    return _watchdog


def _new_watchdog_after_fork() -> None:
    # A forked worker inherits neither the thread nor, safely, its lock: it starts its own.
    global _watchdog
    _watchdog = Watchdog()


os.register_at_fork(after_in_child=_new_watchdog_after_fork)
