"""Prometheus's multiprocess mode: a real gunicorn with two workers (each recycled after ten
requests, so that many processes serve) and two processes standing for the task queue's
workers, all writing to one PROMETHEUS_MULTIPROC_DIR; /metrics, whichever worker answers,
sums them all, the exited processes' counters included."""

import contextlib
import signal
import subprocess
import sys
import time
from http.client import HTTPConnection
from pathlib import Path

import pytest

from tests.monitoring.conftest import samples, value
from tests.project_processes import HOST, free_port, project_env

PROJECT_DIR = Path(__file__).resolve().parents[2]
PROBES = 30
# What a task-queue worker does when it accepts a batch's notifications (outside any
# transaction, the counter moves at once).
WORKER_SCRIPT = """
import sys, django
django.setup()
from notifications.metrics import accepted_count
accepted_count(client_id="8002", source="batch", count=int(sys.argv[1]))
"""


@pytest.fixture
def machine(tmp_path):
    """The environment of one machine's processes, sharing a PROMETHEUS_MULTIPROC_DIR."""
    # Never migrated: /healthz and /metrics need no table (the queue's figures are left
    # out when the database cannot give them).
    return project_env(
        tmp_path,
        LOG_LEVEL="CRITICAL",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        DJANGO_SETTINGS_MODULE="kokatto_site.settings",
    )


@pytest.fixture
def gunicorn(machine, tmp_path):
    """gunicorn started the production way, with the project's gunicorn.conf.py: its port."""
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    command = [str(Path(sys.executable).parent / "gunicorn"), "kokatto_site.wsgi"]
    server = subprocess.Popen(
        [*command, "-w", "2", "--max-requests", "10", "-b", f"{HOST}:{port}"],
        cwd=PROJECT_DIR,
        env=machine,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_answering(server, port)
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=20)
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        log.close()


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until_answering(server: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn exited before answering"
        with contextlib.suppress(OSError):
            get(port, "/healthz")
            return
        time.sleep(0.2)
    raise AssertionError("gunicorn did not answer within 60 s")


def test_metrics_sum_every_worker_of_gunicorn_and_of_the_task_queue(gunicorn, machine):
    port = gunicorn
    # The request that found gunicorn up was one probe already.
    for _ in range(PROBES - 1):
        assert get(port, "/healthz")[0] == 200
    for count in (3, 4):
        subprocess.run(
            [sys.executable, "-c", WORKER_SCRIPT, str(count)],
            cwd=PROJECT_DIR,
            env=machine,
            check=True,
            timeout=60,
        )

    status, body = get(port, "/metrics")

    assert status == 200
    scraped = samples(body)
    # Every request counted by the worker that took it, the answering one's own included.
    assert value(scraped, "django_http_requests_before_middlewares_total") == PROBES + 1
    assert value(scraped, "django_http_responses_before_middlewares_total") == PROBES
    accepted = {"client": "8002", "source": "batch"}
    assert value(scraped, "kokatto_notifications_accepted_total", **accepted) == 7
    # No process could serve more than ten requests: the sums span at least four.
    writers = {
        path.stem.rsplit("_", 1)[-1]
        for path in Path(machine["PROMETHEUS_MULTIPROC_DIR"]).glob("counter_*.db")
    }
    assert len(writers) >= 4 + 2
