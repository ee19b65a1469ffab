"""Real `manage.py qcluster` processes for tests, pointed at the test database and a sink.

A cluster runs in its own session (process group), so a test can SIGKILL the
whole of it (monitor, pusher, workers) at once, the way a machine dies.
Its output goes to a log file the test can show when something goes wrong.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

PROJECT_DIR = Path(__file__).resolve().parents[2]

# The marks of a test module whose tests run real clusters: committed data, PostgreSQL only.
QCLUSTER_TEST_MARKS = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="qcluster processes need a test database other processes can open "
        "(the SQLite test database is in memory); CI runs these on PostgreSQL",
    ),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# What lets callbacks reach the loopback stand-ins of clients' servers over plain http
# (the defaults refuse both): as settings here, and as the environment of a cluster.
LOOPBACK_CALLBACKS = {
    "CLIENT_CALLBACK_ALLOW_HTTP": True,
    "OUTBOUND_ALLOWED_NETWORKS": ["127.0.0.0/8", "::1/128"],
}
LOOPBACK_CALLBACKS_ENV = {
    "CLIENT_CALLBACK_ALLOW_HTTP": "true",
    "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
}


def shared_database_url() -> str:
    """DATABASE_URL of the database this test runs in, for other processes to open.

    Raises RuntimeError for an in-memory SQLite database: no other process can see it.
    """
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user = quote(db.get("USER") or "", safe="")
        password = quote(db.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = db.get("HOST") or "127.0.0.1"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{credentials}{host}{port}/{quote(db['NAME'], safe='')}"
    if connection.vendor == "sqlite":
        name = str(db["NAME"])
        if connection.is_in_memory_db() or name.startswith("file:memorydb"):
            raise RuntimeError(
                "the SQLite test database is in memory: other processes can't open it"
            )
        return f"sqlite:///{name}"
    raise RuntimeError(f"no DATABASE_URL for a {connection.vendor} test database")


def cluster_env(sink, **overrides) -> dict[str, str]:
    """The environment of a qcluster sending SMS to `sink` (an SmsSink) through Twilio's API."""
    env = dict(os.environ)
    # Another cluster name would mean another queue than the one the test feeds.
    env.pop("Q_CLUSTER_NAME", None)
    env.update(
        DATABASE_URL=shared_database_url(),
        REDIS_URL=settings.REDIS_URL,
        SMS_BACKENDS="twilio",
        TWILIO_BASE_URL=sink.url,
        TWILIO_ACCOUNT_SID=sink.account_sid,
        TWILIO_AUTH_TOKEN=sink.auth_token,
        SMS_SENDER_ID="BANKDEMO",
        DELIVERY_LEASE_SECONDS="3",
        DELIVERY_CHUNK_SIZE="50",
        Q_WORKERS="1",
        DEBUG="false",
        # django-q signs each queued task with SECRET_KEY: the test process queues them.
        SECRET_KEY=settings.SECRET_KEY,
        FIELD_ENCRYPTION_KEY=",".join(settings.FIELD_ENCRYPTION_KEYS),
        API_CONFIG_CACHE_SECONDS="0",
        PYTHONUNBUFFERED="1",
    )
    env.update({name: str(value) for name, value in overrides.items()})
    # `manage.py check` (run by qcluster) refuses a send deadline not under half the lease.
    lease = float(env["DELIVERY_LEASE_SECONDS"])
    env.setdefault("DELIVERY_SEND_TIMEOUT_SECONDS", f"{min(10, lease / 2.5):g}")
    return env


@contextlib.contextmanager
def cluster_starter(log_dir: Path):
    """A start(sink, **env) that runs a Cluster (its log in `log_dir`); on leaving, every
    cluster started is SIGKILLed (the work is done or the test failed: no warm shutdown)."""
    started: list[Cluster] = []

    def start(sink, **env) -> "Cluster":
        cluster = Cluster(cluster_env(sink, **env), log_dir / f"qcluster-{len(started) + 1}.log")
        started.append(cluster)
        return cluster

    try:
        yield start
    finally:
        for cluster in started:
            cluster.kill()


class Cluster:
    """One `python manage.py qcluster` in its own process group."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()/kill()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=PROJECT_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL every process of the cluster at once: no cleanup, no goodbye."""
        self._signal_group(signal.SIGKILL)
        self._reap(timeout=10)

    def stop(self, grace: float = 5) -> None:
        """SIGTERM (django-q's warm shutdown), then SIGKILL whatever is left after `grace`."""
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        self._signal_group(signal.SIGKILL)  # the workers too, even if the leader is gone
        self._reap(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def _reap(self, timeout: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        self._log.close()


def wait_until(condition, *, timeout: float, interval: float = 0.05, every=None) -> bool:
    """Poll `condition` until it is true or `timeout` seconds pass; returns its last answer.

    `every`: (seconds, action) to call `action` every so often while waiting.
    """
    deadline = time.monotonic() + timeout
    next_action = time.monotonic()
    while True:
        if every and time.monotonic() >= next_action:
            every[1]()
            next_action = time.monotonic() + every[0]
        if condition():
            return True
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(interval)


def running(*clusters: Cluster) -> bool:
    """Whether every cluster has started its workers."""
    return all("running." in cluster.log_tail(100_000) for cluster in clusters)


def logs(*clusters: Cluster) -> str:
    return "\n".join(f"--- {c.log_path.name}:\n{c.log_tail()}" for c in clusters)
