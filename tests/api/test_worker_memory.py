"""A real gunicorn worker's memory stays flat under a flood of anonymous /notif requests.

Each request names a clientId nobody has and carries a body large enough to matter:
before the limits, every one left an entry in the worker's configuration cache, and
bodies were read whole before anything was checked.
"""

import contextlib
import json
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.project_processes import HOST, free_port, project_env

PROJECT_DIR = Path(__file__).resolve().parents[2]
REQUESTS = 10_000
WARM_UP = 1_000
CLIENT_THREADS = 4
MAX_GROWTH_BYTES = 10 * 1024 * 1024


@pytest.fixture
def gunicorn_worker(tmp_path):
    """A one-worker gunicorn serving the project on a migrated SQLite file: (port, worker pid)."""
    env = project_env(
        tmp_path,
        ALLOWED_HOSTS=HOST,
        LOG_LEVEL="ERROR",  # one warning a refused signature would fill the log
        API_CONFIG_CACHE_SECONDS="3600",  # nothing leaves the cache by age during the test
    )
    manage = [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"]
    subprocess.run(manage, cwd=PROJECT_DIR, env=env, check=True, timeout=120)
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    command = [str(Path(sys.executable).parent / "gunicorn"), "kokatto_site.wsgi", "-w", "1"]
    server = subprocess.Popen(
        [*command, "-b", f"{HOST}:{port}"],
        cwd=PROJECT_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        worker = wait_for_worker(server, port)
        yield port, worker
    finally:
        server.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=20)
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        log.close()


def wait_for_worker(server: subprocess.Popen, port: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn exited before answering"
        with contextlib.suppress(OSError):
            send(port, "GET", "/notif", b"", "")
            children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
            assert len(children) == 1
            return int(children[0])
        time.sleep(0.2)
    raise AssertionError("gunicorn did not answer within 60 s")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def send(port: int, method: str, path: str, body: bytes, content_type: str) -> str:
    """The answer's status, or "reset" when the server closed on a body it would not read."""
    connection = HTTPConnection(HOST, port, timeout=30)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return str(response.status)
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    finally:
        connection.close()


def anonymous_request(number: int) -> tuple[bytes, str, bool]:
    """(body, content type, oversized) of the number-th request: a random clientId, a
    made-up signature, and a body of 4 KB (every third one 100 KB, past the limit)."""
    client_id = secrets.token_hex(16) if number % 2 else secrets.token_hex(2000)
    oversized = number % 3 == 0
    parameters = {
        "clientId": client_id,
        "operation": "create",
        "appType": "ABC",
        "clientNotifRefId": secrets.token_hex(16),
        "timestamp": str(int(time.time())),
        "signature": secrets.token_hex(32),
        "customerName": "x" * (100_000 if oversized else 4_000),
    }
    if number % 4 < 2:
        return json.dumps(parameters).encode(), "application/json", oversized
    return urlencode(parameters).encode(), "application/x-www-form-urlencoded", oversized


def flood(port: int, numbers: range) -> Counter:
    outcomes, lock = Counter(), threading.Lock()

    def drive(part):
        seen = Counter()
        for number in part:
            body, content_type, oversized = anonymous_request(number)
            seen[(send(port, "POST", "/notif", body, content_type), oversized)] += 1
        with lock:
            outcomes.update(seen)

    threads = [
        threading.Thread(target=drive, args=(numbers[i::CLIENT_THREADS],))
        for i in range(CLIENT_THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_a_worker_s_memory_stays_flat_under_anonymous_requests_with_large_bodies(
    gunicorn_worker,
):
    port, worker = gunicorn_worker
    flood(port, range(WARM_UP))  # imports, first allocations, arenas
    before = rss_bytes(worker)

    outcomes = flood(port, range(WARM_UP, WARM_UP + REQUESTS))

    growth = rss_bytes(worker) - before
    assert growth < MAX_GROWTH_BYTES, f"RSS grew {growth / 2**20:.1f} MiB; answers {outcomes}"
    assert sum(outcomes.values()) == REQUESTS
    # Refused, never a fault: 400 (a clientId of the wrong form), 401, or 413 for the large
    # bodies (or the connection closed on their unread rest, as a server may).
    answers = {status for status, _ in outcomes}
    assert answers <= {"400", "401", "413", "reset"}, outcomes
    assert {status for status, oversized in outcomes if oversized} <= {"413", "reset"}, outcomes
