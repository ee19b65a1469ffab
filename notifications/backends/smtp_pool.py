"""The worker process's open SMTP connections, reused from one send to the next.

Opening an SMTP connection costs a TCP handshake, the greeting, EHLO, and in
production STARTTLS and a login: several round trips, each as long as sending a
message. So a worker keeps its connections open between sends, between groups
and between tasks, in a pool of at most EMAIL_MAX_CONNECTIONS (the SMTP server
sees up to Q_WORKERS times that). A connection is in one thread's hands at a
time; it is closed (QUIT) after EMAIL_CONNECTION_MAX_MESSAGES messages or
EMAIL_CONNECTION_MAX_SECONDS, when a send on it fails in a way that may have
broken it (it is then shut down, not reused), and when the worker exits.

The pool is built per process (a forked worker makes its own: a connection
inherited from the parent would be shared by two processes) and per SMTP
configuration (tests change it).
"""

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.util import Finalize

from django.conf import settings

# How long closing a connection (QUIT and the server's answer) may take, at most.
CLOSE_SECONDS = 2.0


class PooledConnection:
    """One of the pool's connections: a Django SMTP email backend, opened or not yet."""

    __slots__ = ("backend", "idle_since", "messages", "opened_at")

    def __init__(self, backend):
        self.backend = backend
        self.opened_at: float | None = None  # time.monotonic() when it connected
        self.idle_since = 0.0  # time.monotonic() when it was last given back
        self.messages = 0

    @property
    def client(self):
        """The smtplib client, once it is open."""
        return self.backend.connection

    def open(self) -> None:
        self.backend.open()
        self.opened_at = time.monotonic()

    def worn_out(self, now: float) -> bool:
        return self.opened_at is not None and (
            self.messages >= settings.EMAIL_CONNECTION_MAX_MESSAGES
            or now - self.opened_at >= settings.EMAIL_CONNECTION_MAX_SECONDS
        )


class SmtpPool:
    """At most `size` SMTP connections of one process, each used by one thread at a time."""

    def __init__(self, size: int, make_backend: Callable[[], object], close: Callable):
        self.size = size
        self._make_backend = make_backend
        self._close = close  # close(backend, *, quit: bool): with a deadline
        self._slots = threading.BoundedSemaphore(size)
        self._holders = threading.local()
        self._idle: list[PooledConnection] = []
        self._lock = threading.Lock()
        self.opened = 0  # connections handed out unopened so far (each opens once)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the pool's `size` places (waiting for one); re-entrant per thread.

        The dispatcher takes it before it checks a delivery's lease, so the wait for
        a connection never eats into the time the lease leaves for the send.
        """
        if getattr(self._holders, "depth", 0):
            self._holders.depth += 1
            try:
                yield
            finally:
                self._holders.depth -= 1
            return
        self._slots.acquire()
        self._holders.depth = 1
        try:
            yield
        finally:
            self._holders.depth = 0
            self._slots.release()

    def take(self) -> PooledConnection:
        """An idle connection (the most recently used one), or a new, unopened one. Call
        within `slot()`: the slots bound how many are out at once. Worn-out idle
        connections are closed (QUIT, within CLOSE_SECONDS and the send's deadline,
        which the caller started) before a new one is made, so the process never
        holds more than `size` open."""
        now = time.monotonic()
        worn_out = []
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if not connection.worn_out(now):
                    break
                worn_out.append(connection)
            else:
                connection = None
        for old in worn_out:
            self._close(old.backend, quit=True)
        if connection is not None:
            return connection
        self.opened += 1
        return PooledConnection(self._make_backend())

    def give_back(self, connection: PooledConnection, *, broken: bool) -> None:
        """Return a connection after a send; a broken or worn-out one is closed instead."""
        if broken or connection.opened_at is None:
            self._close(connection.backend, quit=False)
        elif connection.worn_out(time.monotonic()):
            self._close(connection.backend, quit=True)
        else:
            connection.idle_since = time.monotonic()
            with self._lock:
                self._idle.append(connection)

    def close_all(self) -> None:
        """Close the idle connections (QUIT): at the worker's exit, or when replaced."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            self._close(connection.backend, quit=True)

    @property
    def idle_count(self) -> int:
        return len(self._idle)


_pools: dict[tuple, SmtpPool] = {}
_pools_lock = threading.Lock()


def process_pool(key: tuple, make_pool: Callable[[], SmtpPool]) -> SmtpPool:
    """This process's pool for the SMTP configuration `key` (one at a time: a pool for
    another configuration closes the previous one's connections)."""
    key = (os.getpid(), *key)
    pool = _pools.get(key)
    if pool is not None:
        return pool
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            for old_key in list(_pools):
                old = _pools.pop(old_key)
                if old_key[0] == key[0]:
                    old.close_all()
            pool = _pools[key] = make_pool()
            # Run when the process exits, a multiprocessing worker (qcluster's) included.
            Finalize(pool, pool.close_all, exitpriority=10)
    return pool


def close_process_pools() -> None:
    """Close this process's idle pooled connections (tests; a worker's exit does it too)."""
    with _pools_lock:
        pools = [pool for key, pool in _pools.items() if key[0] == os.getpid()]
    for pool in pools:
        with suppress(Exception):
            pool.close_all()
