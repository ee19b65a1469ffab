"""Throughput benchmark of the delivery pipeline: queued SMS deliveries out through an HTTP gateway.

What it measures, in one run, with the production setup: a `manage.py qcluster`
(django-q2 with the Redis broker, `--workers` workers, `DELIVERY_CHUNK_SIZE`
`--chunk`), PostgreSQL, DEBUG off, and the generic HTTP gateway backend
(`SMS_BACKENDS=http`, notifications.backends.http_sms.HttpSmsBackend; `--backend
twilio` uses the Twilio backend instead) pointed at a local sink:

1. The pipeline. `--deliveries` SMS deliveries (client 8002, application ABC,
   the demo SMS template) are queued beforehand, outside the timed phase (bulk
   inserts: PENDING, due now, each with its "accepted" event). The clock starts
   when `--workers` dispatch tasks are queued (a task sends chunk after chunk for
   DELIVERY_TASK_SECONDS, then queues itself again while they come back full) and
   stops when the database counts every delivery SENT (polled every 0.5 s). It
   prints messages/second, the end-to-end latency from the start of the timed
   phase to the sink's arrival (all deliveries are
   due at once when the clock starts, so this is a queueing time: its p50 is
   about half the run), the latency from each delivery's claim to its arrival,
   and CPU time a message by component. The sink's count must equal
   `--deliveries`, and no idempotency key may arrive twice.
2. The sink's ceiling. One process (this one) posts the same messages (the same
   body and headers as the backend's `requests` sends) to the sink over one
   reused keep-alive connection (http.client), `--ceiling-messages` of them; then
   the same with the backends' own client (notifications.backends.http: http.client
   with kept connections), with a bare urllib3 pool, and with a `requests.Session`,
   for comparison. The ratio
   pipeline ÷ ceiling says how far the pipeline is from the gateway's limit.

The sink runs in a process of its own (not sharing this process's GIL): an
asyncio server that parses HTTP/1.1 itself, answers 201 with a JSON id (and
Twilio's "sid") on kept-alive connections, counts messages and records when each
idempotency key arrives. `--sink threading` uses http.server's
ThreadingHTTPServer instead (one write an answer, TCP_NODELAY: unbuffered, it
would answer only a few dozen messages/s). Both sinks' ceilings are far above the
pipeline's rate.

The benchmark creates its own database (DROP/CREATE `kokatto_dispatch_bench` on
127.0.0.1:5432 as user postgres, trust auth), migrates it, loads the demo data
(`seed_demo --force`), flushes Redis database 14 (the broker), and drops the
database again at the end (`--keep-db` keeps it). The sweeper schedule ("dispatch
due deliveries") is held back until the clock starts and then runs every minute as
in production. `--profile N` then stops the cluster and dispatches 2 N more
deliveries in this process, one worker without a queue: the rate, SQL queries a
delivery by kind (CaptureQueriesContext) and the top functions under cProfile.

Run it from the project root:

    .venv/bin/python bench/dispatch.py                       # 100,000 deliveries
    .venv/bin/python bench/dispatch.py --deliveries 10000    # a quick look
    .venv/bin/python bench/dispatch.py --deliveries 10000 --profile 2000 --workers 2
    .venv/bin/python bench/dispatch.py --medium email --deliveries 10000

`--medium email` sends email deliveries over SMTP to an aiosmtpd sink instead
(bench/dispatch_email.py): the ceiling is one kept-alive smtplib connection, the
sink counts messages, connections and distinct Message-IDs, and the target is
0.7 x that ceiling (django-post_office's best: bench/dispatch_post_office.py).

Target on this 2-core machine (cluster, PostgreSQL, Redis and the sink share the
cores): at least 1,000 messages/s through the pipeline. Past runs: bench/RESULTS.md.
"""

import argparse
import asyncio
import contextlib
import cProfile
import logging
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import requests
import urllib3

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from dispatch_email import (  # noqa: E402
    RECIPIENT_EMAIL,
    ceiling_message,
    ceiling_smtplib,
    demo_email,
    print_email_verdict,
    smtp_sink,
)
from support import (  # noqa: E402
    CpuMeter,
    drop_database,
    is_postgres_of,
    machine_busy_seconds,
    manage,
    print_profile_table,
    recreate_database,
    serve_until_stopped,
)

HOST = "127.0.0.1"
CLIENT_ID = "8002"
APP_CODE = "ABC"
RECIPIENT = "+6281234567890"
PARAMS = {
    "customerName": "Budi Santoso",
    "balance": "1230000",
    "dueDate": "09-09-2015",
    "msisdn": RECIPIENT,
}
GATEWAY_PATH = "/v1/sms"
TWILIO_SID = "ACbench0123456789abcdef0123456789"
TWILIO_TOKEN = "bench-token"  # noqa: S105 (a stand-in, never leaves the machine)
SWEEPER = "dispatch due deliveries"

TARGET_MESSAGES_PER_SECOND = 1000


# --- the sink (runs in a child process) -------------------------------------------------


class SinkState:
    """What the sink has seen since the last reset."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.count = 0
        self.arrivals = {}  # idempotency key -> time.time() of its first arrival
        self.duplicates = Counter()  # key -> arrivals after the first
        self.without_key = 0
        self.body_sizes = Counter()
        self.connections = 0

    def record(self, key: str | None, size: int) -> int:
        self.count += 1
        if key is None:
            self.without_key += 1
        elif key in self.arrivals:
            self.duplicates[key] += 1
        else:
            self.arrivals[key] = time.time()
        self.body_sizes[size] += 1
        return self.count

    def report(self) -> dict:
        return {
            "count": self.count,
            "arrivals": self.arrivals,
            "duplicates": dict(self.duplicates),
            "without_key": self.without_key,
            "body_sizes": dict(self.body_sizes),
            "connections": self.connections,
        }


KEY_HEADERS = {b"idempotency-key", b"i-twilio-idempotency-token"}


def _answer_body(number: int) -> bytes:
    return b'{"id":"bench-%d","sid":"SMbench%d","status":"queued"}' % (number, number)


def _http_answer(status: bytes, body: bytes, close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status,
        len(body),
        connection,
        body,
    )


class _SinkProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and pipelining; bodies by Content-Length only."""

    def __init__(self, state: SinkState):
        self.state = state
        self.buffer = bytearray()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.state.connections += 1

    def data_received(self, data):
        self.buffer += data
        answers, close = [], False
        while not close:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                break
            lines = bytes(self.buffer[:head_end]).split(b"\r\n")
            length, key, chunked = 0, None, False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name in KEY_HEADERS:
                    key = value.strip().decode()
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
                elif name == b"transfer-encoding":
                    chunked = True
            if chunked:  # not what the backends send
                answers.append(_http_answer(b"411 Length Required", b"{}", close=True))
                close = True
                break
            end = head_end + 4 + length
            if len(self.buffer) < end:
                break
            del self.buffer[:end]
            if lines[0].startswith(b"POST "):
                number = self.state.record(key, length)
                answers.append(_http_answer(b"201 Created", _answer_body(number), close))
            else:
                answers.append(_http_answer(b"200 OK", b"{}", close))
        if answers:
            self.transport.write(b"".join(answers))
        if close:
            self.transport.close()


async def _asyncio_sink(control) -> None:
    loop = asyncio.get_running_loop()
    state = SinkState()
    server = await loop.create_server(lambda: _SinkProtocol(state), HOST, 0, backlog=1024)
    await serve_until_stopped(server, state, control)


def _threading_sink(control) -> None:
    state, lock = SinkState(), threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Unbuffered, the headers and the body leave in two segments, and Nagle's
        # algorithm against the client's delayed ACK holds each answer ~40 ms.
        wbufsize = 64 * 1024  # one segment: flushed after each request
        disable_nagle_algorithm = True

        def setup(self):
            super().setup()
            with lock:
                state.connections += 1

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            key = self.headers.get("Idempotency-Key") or self.headers.get(
                "I-Twilio-Idempotency-Token"
            )
            with lock:
                number = state.record(key, length)
            body = _answer_body(number)
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    control.send(("ready", server.server_address[1]))
    while True:
        try:
            command = control.recv()
        except EOFError:
            break
        with lock:
            if command == "report":
                control.send(state.report())
            elif command == "reset":
                state.reset()
                control.send("ok")
            else:
                break
    server.shutdown()
    server.server_close()


def _sink_main(kind: str, control) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark stops it
    if kind == "threading":
        _threading_sink(control)
    elif kind == "smtp":
        asyncio.run(smtp_sink(SinkState(), control))
    else:
        asyncio.run(_asyncio_sink(control))


class Sink:
    """The parent's handle on the sink process."""

    def __init__(self, kind: str):
        context = multiprocessing.get_context("fork")  # before Django is set up here
        self.control, child_end = context.Pipe()
        self.process = context.Process(
            target=_sink_main, args=(kind, child_end), name="bench-sink", daemon=True
        )
        self.process.start()
        child_end.close()
        if not self.control.poll(15):
            raise SystemExit("the sink did not start within 15 s")
        _, self.port = self.control.recv()

    def ask(self, command: str, timeout: float = 60):
        self.control.send(command)
        if not self.control.poll(timeout):
            raise SystemExit(f"the sink did not answer {command!r} within {timeout:.0f} s")
        return self.control.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                self.control.send("stop")
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)


# --- the sink's ceiling ------------------------------------------------------------------


def ceiling_http_client(port, path, body, headers, key_header, count) -> tuple[float, int]:
    """Messages/second over one kept-alive http.client connection, and non-201 answers."""
    connection = HTTPConnection(HOST, port, timeout=10)
    failures = 0
    started = time.perf_counter()
    for number in range(count):
        connection.request(
            "POST", path, body=body, headers={**headers, key_header: f"kokatto-ceiling-{number}"}
        )
        response = connection.getresponse()
        response.read()
        failures += response.status != 201
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed, failures


def ceiling_requests(url, payload, key_header, auth, count) -> tuple[float, int]:
    """The same with a requests.Session, the client the HTTP backends use."""
    session = requests.Session()
    session.auth = auth
    failures = 0
    started = time.perf_counter()
    for number in range(count):
        response = session.post(
            url,
            data=payload,
            headers={key_header: f"kokatto-ceiling-requests-{number}"},
            timeout=(3.05, 10),
        )
        failures += response.status_code != 201
    elapsed = time.perf_counter() - started
    session.close()
    return count / elapsed, failures


def ceiling_backend_client(url, payload, key_header, auth, count) -> tuple[float, int]:
    """The same with the HTTP backends' client (notifications/backends/http.py)."""
    from notifications.backends.http import HttpClient

    client = HttpClient(
        timeout=(3.05, 10), max_answer_bytes=64 * 1024, pool_size=1, basic_auth=auth
    )
    failures = 0
    started = time.perf_counter()
    for number in range(count):
        answer = client.post(
            url, form=payload, headers={key_header: f"kokatto-ceiling-backend-{number}"}
        )
        failures += answer.status != 201
    return count / (time.perf_counter() - started), failures


def ceiling_urllib3(url, payload, key_header, auth, count) -> tuple[float, int]:
    """The same with a urllib3 pool (what the backends used before issue 20)."""
    headers = urllib3.make_headers(basic_auth=":".join(auth)) if auth else {}
    pool = urllib3.PoolManager(maxsize=1, retries=False, headers=headers)
    failures = 0
    started = time.perf_counter()
    for number in range(count):
        response = pool.request(
            "POST",
            url,
            fields=payload,
            encode_multipart=False,
            headers={key_header: f"kokatto-ceiling-urllib3-{number}"},
            timeout=urllib3.Timeout(connect=3.05, read=10),
        )
        failures += response.status != 201
    pool.clear()
    return count / (time.perf_counter() - started), failures


def requests_like_headers(body: bytes, auth) -> dict[str, str]:
    """The headers requests sends for a form POST (http.client adds Host and Content-Length)."""
    prepared = requests.Request("POST", f"http://{HOST}/", data=body, auth=auth).prepare()
    headers = dict(requests.utils.default_headers())
    headers.update(prepared.headers)
    headers.pop("Content-Length", None)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return headers


# --- CPU accounting (Linux /proc) -------------------------------------------------------


class PipelineCpuMeter(CpuMeter):
    """By component: the cluster (its session), the sink, Redis, this process, and PostgreSQL
    (the backends of `database` and the server's own processes). Anything else is someone
    else's work, counted by command as "other:…". Backends come and go (CONN_MAX_AGE): sample
    every 0.5 s.
    """

    def __init__(self, cluster_session: int, sink_pid: int, database: str):
        self.cluster_session, self.sink_pid, self.database = cluster_session, sink_pid, database
        super().__init__()

    def component(self, entry: Path, pid: int, fields: list[str], command: str) -> str:
        if int(fields[3]) == self.cluster_session:
            return "qcluster"
        if pid == self.sink_pid:
            return "sink"
        if pid == os.getpid():
            return "benchmark"
        if command.startswith("postgres"):
            ours = is_postgres_of(entry, self.database)
            return "postgres" if ours else "other:postgres (other databases)"
        if command.startswith("redis-server"):
            return "redis"
        return f"other:{command}"


def session_members(session: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == session:
                    members.append(int(entry.name))
    return members


def idle_check() -> None:
    load = os.getloadavg()
    busy = machine_busy_seconds()
    time.sleep(1.0)
    busy = machine_busy_seconds() - busy
    print(
        f"machine: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"{busy * 100:.0f}% of a core busy in the last second",
        flush=True,
    )
    if busy > 0.15:
        print(
            "warning: something else is using the CPU while the benchmark is idle; "
            "the figures below will be low",
            flush=True,
        )


# --- set-up and tear-down ---------------------------------------------------------------


def start_cluster(env: dict[str, str], log) -> subprocess.Popen:
    command = [sys.executable, str(PROJECT_DIR / "manage.py"), "qcluster"]
    # A session of its own: the signal goes to the cluster's main process only,
    # which stops its workers cleanly (see the Procfile).
    return subprocess.Popen(  # noqa: S603 (a fixed command line, no shell)
        command,
        cwd=PROJECT_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_until_cluster_idle(cluster: subprocess.Popen, workers: int, timeout: float) -> None:
    from django_q.conf import Conf
    from django_q.status import Stat

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.poll() is not None:
            raise SystemExit(f"qcluster exited with {cluster.returncode} before it was ready")
        for stat in Stat.get_all():
            if str(stat.status) == str(Conf.IDLE) and len(stat.workers) >= workers:
                return
        time.sleep(0.2)
    raise SystemExit(f"qcluster was not idle with {workers} workers within {timeout:.0f} s")


def stop_cluster(cluster: subprocess.Popen) -> None:
    if cluster.poll() is None:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print("qcluster did not stop within 30 s: killing its process group", flush=True)
    leftovers = session_members(cluster.pid)
    if leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(cluster.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        cluster.wait(timeout=10)


# --- the deliveries (this process, Django set up) ----------------------------------------


def queue_deliveries(count: int, prefix: str, *, chunk: int = 5000, medium: str = "sms") -> float:
    """Insert `count` notifications with one due delivery of `medium` each, as intake would
    leave them."""
    from django.db import transaction
    from django.utils import timezone

    from clients.models import Application
    from notifications.models import Delivery, Notification, Source

    application = Application.objects.select_related("client").get(
        client__client_id=CLIENT_ID, code=APP_CODE
    )
    started = time.perf_counter()
    now = timezone.now()
    for first in range(0, count, chunk):
        with transaction.atomic():
            notifications = Notification.objects.bulk_create(
                Notification(
                    client=application.client,
                    application=application,
                    reference=f"{prefix}-{number}",
                    params=PARAMS,
                    source=Source.API,
                )
                for number in range(first, min(count, first + chunk))
            )
            recipient = RECIPIENT_EMAIL if medium == "email" else RECIPIENT
            Delivery.objects.bulk_create(
                Delivery(notification=n, medium=medium, recipient=recipient, next_attempt_at=now)
                for n in notifications
            )
    analyse_tables()
    return time.perf_counter() - started


def analyse_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) notifications_notification, notifications_delivery,"
            " notifications_deliveryevent"
        )


def demo_message() -> str:
    """The SMS text the pipeline renders for each of these deliveries."""
    from clients.models import Application
    from kokatto_site.demo import DEMO_SMS_BODY
    from templates_app.template_checks import field_formats
    from templates_app.template_language import prepare

    application = Application.objects.get(client__client_id=CLIENT_ID, code=APP_CODE)
    return prepare(DEMO_SMS_BODY, field_formats(application))(PARAMS)


def server_counters(database_url: str, name: str) -> dict[str, int]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("SELECT pg_stat_clear_snapshot()")
        wal_syncs, wal_records = connection.execute(
            "SELECT wal_sync, wal_records FROM pg_stat_wal"
        ).fetchone()
        commits = connection.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [name]
        ).fetchone()[0]
    return {"wal_syncs": wal_syncs, "wal_records": wal_records, "commits": commits}


def delivery_counts(connection) -> Counter:
    rows = connection.execute(
        "SELECT status, count(*) FROM notifications_delivery GROUP BY status"
    ).fetchall()
    return Counter(dict(rows))


# --- figures ----------------------------------------------------------------------------


def percentiles(values: list[float]) -> str:
    if not values:
        return "no values"
    ordered = sorted(values)
    if len(ordered) >= 2:
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
        p50, p90, p99 = cuts[49], cuts[89], cuts[98]
    else:
        p50 = p90 = p99 = ordered[0]
    return (
        f"p50 {_ms(p50)}  p90 {_ms(p90)}  p99 {_ms(p99)}  max {_ms(ordered[-1])}"
        f"  (min {_ms(ordered[0])})"
    )


def _ms(seconds: float) -> str:
    return f"{seconds:7.2f} s" if seconds >= 10 else f"{seconds * 1000:7.1f} ms"


# --- the pipeline phase ------------------------------------------------------------------


def run_pipeline(arguments, env, sink, cluster, cluster_log_path) -> dict:
    from django.db import connection as django_connection
    from django.utils import timezone
    from django_q.models import Schedule
    from django_q.tasks import async_task

    database_url = env["DATABASE_URL"]
    total = arguments.deliveries
    idle_check()
    before = server_counters(database_url, arguments.database)
    meter = PipelineCpuMeter(cluster.pid, sink.process.pid, arguments.database)
    machine_before = machine_busy_seconds()

    started_wall, started = time.time(), time.monotonic()
    for _ in range(arguments.workers):
        async_task("notifications.tasks.dispatch_deliveries")
    # The sweeper from now on, every minute as in production.
    Schedule.objects.filter(name=SWEEPER).update(next_run=timezone.now() + timedelta(minutes=1))
    django_connection.close()

    deadline = started + arguments.timeout
    counts, finished, last_print = Counter(), None, started
    with psycopg.connect(database_url, autocommit=True) as poll:
        while time.monotonic() < deadline:
            time.sleep(0.5)
            counts = delivery_counts(poll)
            meter.sample()
            now = time.monotonic()
            done = counts["SENT"] + counts["FAILED"] + counts["EXPIRED"]
            if done >= total:
                finished = now
                break
            if cluster.poll() is not None:
                print(f"qcluster exited with {cluster.returncode} during the run", flush=True)
                break
            if now - last_print >= 10:
                last_print = now
                print(
                    f"  {now - started:6.1f} s: {counts['SENT']} sent "
                    f"({counts['SENT'] / (now - started):.0f}/s), {counts['SENDING']} sending, "
                    f"{counts['PENDING']} pending",
                    flush=True,
                )
    ended = finished or time.monotonic()
    meter.sample()
    machine_after = machine_busy_seconds()
    # An idle backend publishes its counters after 10 s, one that exits at once.
    stop_cluster(cluster)
    time.sleep(0.5)
    after = server_counters(database_url, arguments.database)
    report = sink.ask("report")
    return {
        "started_wall": started_wall,
        "seconds": ended - started,
        "finished": finished is not None,
        "counts": counts,
        "cpu": meter.totals(),
        "machine": machine_after - machine_before,
        "server": {key: after[key] - before[key] for key in after},
        "sink": report,
        "cluster_log": cluster_log_path,
    }


def print_pipeline(arguments, result, ceiling_rate) -> bool:
    total = arguments.deliveries
    sink = result["sink"]
    counts = result["counts"]
    seconds = result["seconds"]
    sent = counts["SENT"]
    rate = sent / seconds
    arrivals = sink["arrivals"]
    started = result["started_wall"]
    print()
    print(
        f"pipeline: {sent} of {total} deliveries SENT in {seconds:.2f} s "
        f"(database polled every 0.5 s): {rate:.1f} messages/s"
        + (
            ""
            if result["finished"]
            else f"  !! stopped after the {arguments.timeout:.0f} s timeout"
        )
    )
    if arrivals:
        times = list(arrivals.values())
        first, last = min(times) - started, max(times) - started
        print(
            f"  at the sink: first message {_ms(first).strip()} after the start, last "
            f"{last:.2f} s: {len(times) / last:.1f} messages/s"
        )
        print(
            "  latency, start of the timed phase → arrival (all due at once):\n    "
            + percentiles([moment - started for moment in times])
        )
        claims = claim_times()
        waits = [arrivals[key] - claims[key] for key in arrivals if key in claims]
        print("  latency, claim of the delivery → arrival:\n    " + percentiles(waits))
        recorded = sent_times()
        lags = [recorded[key] - arrivals[key] for key in arrivals if key in recorded]
        print("  arrival → SENT recorded (sent_at):\n    " + percentiles(lags))
    other = {status: n for status, n in counts.items() if status != "SENT"}
    print(f"  delivery statuses: SENT {sent}" + "".join(f", {s} {n}" for s, n in other.items()))
    duplicates = sum(sink["duplicates"].values())
    sizes = ", ".join(f"{n} of {size} bytes" for size, n in sorted(sink["body_sizes"].items()))
    without_key = f", {sink['without_key']} without a key" if sink["without_key"] else ""
    print(
        f"  sink: {sink['count']} messages on {sink['connections']} connections, "
        f"{len(arrivals)} distinct idempotency keys, {duplicates} duplicate arrivals"
        f"{without_key}; bodies: {sizes}"
    )
    if duplicates:
        print(f"  !! keys that arrived more than once (first ones): {list(sink['duplicates'])[:5]}")
    cpu, machine, server = result["cpu"], result["machine"], result["server"]
    if sent:
        named = sum(v for k, v in cpu.items() if not k.startswith("other:"))
        parts = "  ".join(
            f"{name} {cpu[name] * 1000 / sent:.2f}"
            for name in ("qcluster", "postgres", "redis", "sink", "benchmark")
        )
        others = Counter({k[6:]: v for k, v in cpu.items() if k.startswith("other:")})
        rest = machine - named  # other processes, and the kernel's own work
        print(
            f"  CPU ms a message: {parts}  other processes {rest * 1000 / sent:.2f}  "
            f"= machine {machine * 1000 / sent:.2f} ({machine / seconds * 100:.0f}% of one core "
            f"on average, {os.cpu_count()} cores)"
        )
        if rest > 0.1 * machine:
            top = ", ".join(f"{k} {v / seconds * 100:.0f}%" for k, v in others.most_common(4))
            print(
                f"  !! {rest / seconds * 100:.0f}% of a core went to other work during the run: "
                f"the machine was shared ({top} of a core)"
            )
        print(
            f"  PostgreSQL a message: {server['commits'] / sent:.1f} transactions committed "
            f"(this database), {server['wal_syncs'] / sent:.2f} WAL flushes (fdatasync), "
            f"{server['wal_records'] / sent:.1f} WAL records (whole server)"
        )
    print()
    print(
        f"ratio pipeline ÷ sink ceiling: {rate / ceiling_rate:.3f} "
        f"({rate:.1f} ÷ {ceiling_rate:.0f} messages/s)"
    )
    met = rate >= TARGET_MESSAGES_PER_SECOND and result["finished"]
    complete = sink["count"] == total and len(arrivals) == total and not duplicates
    print(
        f"target (≥{TARGET_MESSAGES_PER_SECOND:,} messages/s): {'met' if met else 'NOT met'}; "
        f"sink count = deliveries and no duplicates: {'yes' if complete else 'NO'}"
    )
    return complete and sent == total


def claim_times() -> dict[str, float]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT delivery_id, min(extract(epoch FROM at)) FROM notifications_deliveryevent"
            " WHERE detail = 'claimed' GROUP BY delivery_id"
        )
        return {f"kokatto-delivery-{pk}": float(at) for pk, at in cursor.fetchall()}


def sent_times() -> dict[str, float]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, extract(epoch FROM sent_at) FROM notifications_delivery"
            " WHERE sent_at IS NOT NULL"
        )
        return {f"kokatto-delivery-{pk}": float(at) for pk, at in cursor.fetchall()}


def task_failures() -> tuple[int, int, str]:
    from django_q.models import Task

    succeeded = Task.objects.filter(success=True).count()
    failed = Task.objects.filter(success=False)
    last = failed.order_by("-stopped").first()
    return succeeded, failed.count(), (str(last.result)[:500] if last else "")


# --- the in-process profile ---------------------------------------------------------------

QUERY_TABLE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"(\w+)"')
QUERY_WHERE = re.compile(r'WHERE[\s(]+(?:U\d+\.)?(?:"\w+"\.)?"(\w+)"')


def query_kind(sql: str) -> str:
    words = sql.split(None, 2)
    verb = words[0].upper() if words else "?"
    if verb in {"RELEASE", "ROLLBACK"}:
        verb = " ".join(words[:2]).upper()
    table = QUERY_TABLE.search(sql)
    kind = f"{verb} {table.group(1) if table else ''}".strip()
    if verb == "SELECT" and "FOR UPDATE" in sql:
        kind += " FOR UPDATE"
    if verb == "SELECT" and " JOIN " in sql:
        kind += " (join)"
    where = QUERY_WHERE.search(sql)
    return f"{kind} where {where.group(1)}" if where else kind


def drain(chunk: int, total: int) -> int:
    from notifications.dispatch import dispatch_due

    done = 0
    while done < total:
        claimed = dispatch_due(limit=min(chunk, total - done))
        if not claimed:
            break
        done += claimed
    return done


def profile_one_worker(arguments, env) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    count, chunk = arguments.profile, arguments.chunk
    print()
    print(f"profile: one worker in this process, no queue, chunks of {chunk} (cluster stopped)")
    queue_deliveries(
        2 * count + 3 * chunk, f"profile-{uuid.uuid4().hex[:6]}", medium=arguments.medium
    )
    drain(chunk, chunk)  # warm: connection, backend session, template cache
    connection.close()
    time.sleep(0.5)

    before = server_counters(env["DATABASE_URL"], arguments.database)
    started = time.perf_counter()
    done = drain(chunk, count)
    seconds = time.perf_counter() - started
    connection.close()  # its backend publishes its counters as it exits
    time.sleep(0.5)
    after = server_counters(env["DATABASE_URL"], arguments.database)
    commits = (after["commits"] - before["commits"]) / done
    flushes = (after["wal_syncs"] - before["wal_syncs"]) / done
    print(
        f"  {done} deliveries in {seconds:.2f} s: {done / seconds:.1f}/s, "
        f"{seconds * 1000 / done:.2f} ms a delivery; {commits:.1f} transactions, "
        f"{flushes:.2f} WAL flushes a delivery"
    )

    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        queried = drain(chunk, 2 * chunk)
        seconds = time.perf_counter() - started
    kinds = Counter(query_kind(query["sql"]) for query in captured.captured_queries)
    query_seconds = sum(float(query["time"]) for query in captured.captured_queries)
    print(
        f"  SQL: {len(captured) / queried:.2f} queries a delivery ({len(captured)} for {queried}"
        f" deliveries, chunks of {chunk}); database round trips "
        f"{query_seconds * 1000 / queried:.2f} of {seconds * 1000 / queried:.2f} ms a delivery"
    )
    examples = {}
    for query in captured.captured_queries:
        examples.setdefault(query_kind(query["sql"]), query["sql"])
    for kind, number in kinds.most_common():
        example = " ".join(examples[kind].split())
        if len(example) > 150:
            example = example[:100] + " … " + example[-47:]
        print(f"    {number / queried:6.2f}  {kind:<40} {example}")

    if arguments.medium == "email":
        from django.conf import settings

        # One connection: the sends run in turn on this thread, where cProfile sees them.
        settings.EMAIL_MAX_CONNECTIONS = 1
        print("  (cProfile with EMAIL_MAX_CONNECTIONS=1: the sends on this thread)")
    profiler = cProfile.Profile()
    profiler.enable()
    done = drain(chunk, count)
    profiler.disable()
    for order, lines in (("cumulative", 30), ("tottime", 15)):
        heading = f"  cProfile, {done} deliveries, by {order} time (top {lines}):"
        print_profile_table(profiler, order, lines, heading)


# --- main -------------------------------------------------------------------------------


def email_ceiling(arguments, settings, sink) -> float:
    """The SMTP sink's ceiling: one kept-alive smtplib connection, the pipeline's message."""
    from email.utils import parseaddr

    subject, text, html = demo_email(CLIENT_ID, APP_CODE, PARAMS)
    message = ceiling_message(settings.DEFAULT_FROM_EMAIL, subject, text, html)
    print(f"message: {len(message)} bytes, multipart/alternative (text and HTML)")
    idle_check()
    envelope_from = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    rate, refused = ceiling_smtplib(sink.port, envelope_from, message, arguments.ceiling_messages)
    print(
        f"sink ceiling: {rate:.0f} messages/s ({arguments.ceiling_messages} messages, one "
        f"process, smtplib, one kept-alive connection"
        + (f"; !! {refused} refused" if refused else "")
        + ")",
        flush=True,
    )
    return rate


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--deliveries", type=int, default=100_000, help="SMS deliveries to send")
    parser.add_argument("--workers", type=int, default=4, help="qcluster workers (Q_WORKERS)")
    parser.add_argument("--chunk", type=int, default=50, help="DELIVERY_CHUNK_SIZE")
    parser.add_argument("--backend", choices=("http", "twilio"), default="http")
    parser.add_argument("--sink", choices=("asyncio", "threading"), default="asyncio")
    parser.add_argument(
        "--medium",
        choices=("sms", "email"),
        default="sms",
        help="email: deliveries by SMTP to an aiosmtpd sink (bench/dispatch_email.py)",
    )
    parser.add_argument(
        "--ceiling-messages", type=int, default=20_000, help="messages of the ceiling phase"
    )
    parser.add_argument(
        "--profile", type=int, default=0, help="then profile N deliveries in-process (0: no)"
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the timed phase")
    parser.add_argument("--database", default="kokatto_dispatch_bench")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    arguments = parser.parse_args()
    if not 0 < arguments.deliveries <= 2_000_000:
        parser.error("--deliveries must be 1..2000000")
    if not 0 < arguments.workers <= 64 or not 0 < arguments.chunk <= 10_000:
        parser.error("--workers must be 1..64 and --chunk 1..10000")
    if not 0 < arguments.ceiling_messages <= 1_000_000 or not 0 <= arguments.profile <= 100_000:
        parser.error("--ceiling-messages must be 1..1000000 and --profile 0..100000")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", arguments.database):
        parser.error("--database: lower-case letters, digits and _ only")
    for url in (arguments.postgres, arguments.redis_url):
        if "127.0.0.1" not in url and "localhost" not in url:
            parser.error(f"only loopback servers: {url}")
    return arguments


def bench_environment(arguments, temporary: Path, sink_port: int) -> dict[str, str]:
    from cryptography.fernet import Fernet

    dropped = {"DEBUG", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH", "DATABASE_URL"}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in dropped
        and not key.startswith(("SMS_", "TWILIO_", "DELIVERY_", "Q_", "LOG_LEVEL"))
    }
    env.update(
        DATABASE_URL=f"{arguments.postgres}/{arguments.database}",
        REDIS_URL=arguments.redis_url,
        DEBUG="false",
        SECRET_KEY=f"kokatto-dispatch-bench-{uuid.uuid4().hex}",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS=HOST,
        API_CONFIG_CACHE_SECONDS="10",
        KOKATTO_VAR_DIR=str(temporary / "var"),
        DJANGO_SETTINGS_MODULE="kokatto_site.settings",
        PYTHONPATH=str(PROJECT_DIR),
        Q_WORKERS=str(arguments.workers),
        DELIVERY_CHUNK_SIZE=str(arguments.chunk),
        SMS_BACKENDS=arguments.backend,
        SMS_SENDER_ID="KOKATTO",
    )
    if arguments.backend == "twilio":
        env.update(
            TWILIO_BASE_URL=f"http://{HOST}:{sink_port}",
            TWILIO_ACCOUNT_SID=TWILIO_SID,
            TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        )
    else:
        env["SMS_GATEWAY_URL"] = f"http://{HOST}:{sink_port}{GATEWAY_PATH}"
    if arguments.medium == "email":
        # The demo data's SMS deliveries go to the console, not to the SMTP sink.
        env.update(EMAIL_URL=f"smtp://{HOST}:{sink_port}", SMS_BACKENDS="console")
    return env


def main() -> int:
    arguments = parse_arguments()
    temporary = Path(tempfile.mkdtemp(prefix="kokatto-dispatch-bench-"))
    (temporary / "var").mkdir()
    cluster, cluster_log, ok = None, None, False
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    # Forked before Django is set up in this process.
    sink = Sink("smtp" if arguments.medium == "email" else arguments.sink)
    try:
        env = bench_environment(arguments, temporary, sink.port)
        print(
            f"sink: {'aiosmtpd' if arguments.medium == 'email' else arguments.sink} server on "
            f"{HOST}:{sink.port} (pid {sink.process.pid}); medium {arguments.medium}"
            + ("" if arguments.medium == "email" else f", backend {arguments.backend}"),
            flush=True,
        )
        print(f"database {arguments.database}: create, migrate, seed_demo --force …", flush=True)
        recreate_database(arguments.postgres, arguments.database)
        manage(env, "migrate", "--noinput")
        manage(env, "seed_demo", "--force")

        os.environ.update(env)
        import django

        django.setup()
        logging.getLogger("django-q").setLevel(logging.WARNING)  # one line per queued task
        import redis
        from django.conf import settings
        from django.db import connection
        from django.utils import timezone
        from django_q.models import Schedule

        redis.Redis.from_url(arguments.redis_url).flushdb()
        # Held back until the clock starts: the cluster would run it at once.
        Schedule.objects.filter(name=SWEEPER).update(next_run=timezone.now() + timedelta(days=1))
        seconds = queue_deliveries(arguments.deliveries, "bench", medium=arguments.medium)
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            synchronous_commit = cursor.fetchone()[0]
        print(
            f"queued {arguments.deliveries} {arguments.medium} deliveries in {seconds:.1f} s "
            f"(untimed, bulk inserts); PostgreSQL synchronous_commit={synchronous_commit}",
            flush=True,
        )

        # --- the sink's ceiling
        if arguments.medium == "email":
            ceiling_rate = email_ceiling(arguments, settings, sink)
        else:
            backend = settings.KOKATTO_CHANNEL_BACKENDS["sms"][0]["OPTIONS"]
            text = demo_message()
            if arguments.backend == "twilio":
                path = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
                payload = {"To": RECIPIENT, "From": "KOKATTO", "Body": text}
                key_header, auth = "I-Twilio-Idempotency-Token", (TWILIO_SID, TWILIO_TOKEN)
            else:
                path = GATEWAY_PATH
                payload = {"to": RECIPIENT, "from": backend["sender_id"], "text": text}
                key_header, auth = "Idempotency-Key", None
            body = urlencode(payload).encode()
            headers = requests_like_headers(body, auth)
            print(
                f"message: {len(body)} bytes form-encoded, headers {sorted(headers)} + {key_header}"
            )
            idle_check()
            ceiling_rate, failures = ceiling_http_client(
                sink.port, path, body, headers, key_header, arguments.ceiling_messages
            )
            print(
                f"sink ceiling: {ceiling_rate:.0f} messages/s "
                f"({arguments.ceiling_messages} messages, one process, http.client, "
                f"one kept-alive connection"
                + (f"; !! {failures} answers not 201" if failures else "")
                + ")",
                flush=True,
            )
            client_count = max(1, arguments.ceiling_messages // 4)
            client_rate, failures = ceiling_backend_client(
                f"http://{HOST}:{sink.port}{path}", payload, key_header, auth, client_count
            )
            print(
                f"             {client_rate:.0f} messages/s with the backends' client "
                f"({client_count} messages)"
                + (f"; !! {failures} answers not 201" if failures else ""),
                flush=True,
            )
            urllib3_rate, failures = ceiling_urllib3(
                f"http://{HOST}:{sink.port}{path}", payload, key_header, auth, client_count
            )
            print(
                f"             {urllib3_rate:.0f} messages/s with a urllib3 pool, for comparison"
                f" ({client_count} messages)"
                + (f"; !! {failures} answers not 201" if failures else ""),
                flush=True,
            )
            requests_count = client_count
            requests_rate, failures = ceiling_requests(
                f"http://{HOST}:{sink.port}{path}", payload, key_header, auth, requests_count
            )
            print(
                f"             {requests_rate:.0f} messages/s with a requests.Session, for "
                f"comparison ({requests_count} messages)"
                + (f"; !! {failures} answers not 201" if failures else ""),
                flush=True,
            )
        sink.ask("reset")

        # --- the pipeline
        cluster_log_path = temporary / "qcluster.log"
        cluster_log = cluster_log_path.open("w")
        connection.close()
        cluster = start_cluster(env, cluster_log)
        wait_until_cluster_idle(cluster, arguments.workers, timeout=60)
        print(
            f"qcluster: {arguments.workers} workers (pid {cluster.pid}), Redis broker "
            f"{arguments.redis_url}, DELIVERY_CHUNK_SIZE {arguments.chunk}; timed phase starts "
            f"(timeout {arguments.timeout:.0f} s)",
            flush=True,
        )
        result = run_pipeline(arguments, env, sink, cluster, cluster_log_path)  # stops it
        ok = print_pipeline(arguments, result, ceiling_rate)
        if arguments.medium == "email":
            rate = result["counts"]["SENT"] / result["seconds"]
            exactly_once = print_email_verdict(
                arguments.deliveries, result["sink"], rate, ceiling_rate
            )
            ok = ok and exactly_once
        succeeded, failed, last_failure = task_failures()
        print(f"django-q tasks: {succeeded} succeeded, {failed} failed")
        if failed:
            print(f"  last failure: {last_failure}")
        if not ok:
            cluster_log.flush()
            print(f"qcluster log ends:\n{cluster_log_path.read_text(errors='replace')[-3000:]}")

        if arguments.profile:
            sink.ask("reset")
            profile_one_worker(arguments, env)
        return 0 if ok else 1
    finally:
        if cluster is not None:
            stop_cluster(cluster)
        if cluster_log is not None:
            cluster_log.close()
        sink.stop()
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        with contextlib.suppress(Exception):
            import redis

            redis.Redis.from_url(arguments.redis_url).flushdb()
        if not arguments.keep_db:
            with contextlib.suppress(psycopg.Error):
                drop_database(arguments.postgres, arguments.database)
        shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
