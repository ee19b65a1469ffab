"""Load benchmark of the signed real-time API (/notif create) against a bare insert view.

What it measures, in one run on one gunicorn server started the production way
(`gunicorn kokatto_site.wsgi -w 4`, DEBUG off, PostgreSQL):

1. `/notif?operation=create`: signed GET requests of client 8002's application
   ABC (the demo data), each with a unique clientNotifRefId. Every answer must
   be 201; anything else is counted and reported.
2. `/bench/insert`: a bare Django view on the same server, same middleware and
   same query string, that does one INSERT (a raw cursor) and answers JSON.
   It is the floor the API is compared with: what Django + gunicorn + PostgreSQL
   cost on this machine before any of the platform's own work.

For each it prints requests/second and the p50/p90/p99/max latency, then the
ratios /notif ÷ bare (throughput and p99).

The benchmark creates its own database (DROP/CREATE `kokatto_bench` on
127.0.0.1:5432 as user postgres, trust auth), migrates it, loads the demo data
(`seed_demo --force`), lifts client 8002's rate limit, and drops the database
again at the end (`--keep-db` keeps it). The bare view lives in a temporary
settings/urls module (the project's files are not touched). All signed URLs
are computed before the timed phase; the load comes from `--processes`
processes with `--concurrency` threads in all, one http.client connection per
thread. Gunicorn's sync workers close the connection after each response, so
each request is in practice a new loopback TCP connection. Latency is measured
by the client and includes waiting for a free worker (16 clients, 4 workers).

Run it from the project root:

    .venv/bin/python bench/api_load.py                     # 3000 requests, 16 clients
    .venv/bin/python bench/api_load.py --requests 5000 --concurrency 32
    .venv/bin/python bench/api_load.py --redis-url redis://127.0.0.1:6379/15
    .venv/bin/python bench/api_load.py --requests 1000 --rounds 5  # a busy machine

With `--rounds N` the two phases run N times, alternating (bare, /notif, bare, …),
and the figures add the rounds up: on a machine whose load changes, each side then
gets its share of the quiet and the busy moments. From three rounds it also prints the
median of each round's ratio (a /notif round against the bare round before it): on a
machine whose speed drifts by a third within minutes, short rounds (`--rounds 16
--requests 800`) compare the two sides under the same conditions.

Without `--redis-url` the rate-limit counter lives in each worker's local
memory; with it, in Redis as in production (one more round trip a request).

`--profile` runs the same phases with each gunicorn worker under cProfile, one
profile per phase (requests told apart by their path), and prints where the
workers' time goes, per request: the profiler slows the workers, so the
figures of a profiled run are not comparable with an unprofiled one.

Targets on this 2-core machine (client, server and database share the cores):
/notif at least 300 creates/s, with p99 under 100 ms. Past runs: bench/RESULTS.md.
"""

import argparse
import contextlib
import io
import multiprocessing
import os
import pstats
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlencode

import psycopg

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from support import (  # noqa: E402
    drop_database,
    machine_busy_seconds,
    manage,
    process_cpu_seconds,
    recreate_database,
)

from clients.signing import sign  # noqa: E402 (needs the project on sys.path)

# The same value as kokatto_site.demo.DEMO_SECRET_KEY, which `seed_demo` issues to
# client 8002 (importing kokatto_site.demo would need Django set up in this process).
DEMO_SECRET_KEY = "kokatto-demo-secret-0123456789abcdef"  # noqa: S105 (public by design)
CLIENT_ID = "8002"
APP_TYPE = "ABC"
HOST = "127.0.0.1"

TARGET_CREATES_PER_SECOND = 300
TARGET_P99_MS = 100

BENCH_SETTINGS = """\
from kokatto_site.settings import *  # noqa: F403

ROOT_URLCONF = "kokatto_bench_urls"
"""

BENCH_URLS = """\
import json

from django.db import connection
from django.http import JsonResponse
from django.urls import path

from kokatto_site.urls import urlpatterns as site_urlpatterns


def bench_insert(request):
    payload = {name: request.GET[name] for name in request.GET}
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_row (ref, payload) VALUES (%s, %s) RETURNING id",
            [payload.get("clientNotifRefId", ""), json.dumps(payload)],
        )
        (row_id,) = cursor.fetchone()
    return JsonResponse({"id": row_id, "status": "ACCEPTED"}, status=201)


urlpatterns = [*site_urlpatterns, path("bench/insert", bench_insert)]
"""

# --profile: the WSGI application under cProfile, one profiler per phase (by path), each
# worker writing its profiles when it exits (gunicorn's worker_exit hook).
BENCH_PROFILED_WSGI = """\
import cProfile
import os
import time

from kokatto_site.wsgi import application as site_application

PROFILE_DIR = os.environ["KOKATTO_BENCH_PROFILE_DIR"]
# CPU time by default; wall-clock time shows the waits for PostgreSQL and Redis too.
WALL = os.environ["KOKATTO_BENCH_PROFILE_CLOCK"] == "wall"
CLOCK = time.perf_counter if WALL else time.process_time
PHASES = {"/notif": "notif", "/bench/insert": "bare"}
profilers = {phase: cProfile.Profile(CLOCK) for phase in PHASES.values()}
requests = dict.fromkeys(PHASES.values(), 0)


def application(environ, start_response):
    phase = PHASES.get(environ.get("PATH_INFO", ""))
    if phase is None:
        return site_application(environ, start_response)
    requests[phase] += 1
    profiler = profilers[phase]
    profiler.enable()
    try:
        # The body is a list: rendering is done inside the call.
        return site_application(environ, start_response)
    finally:
        profiler.disable()


def dump():
    for phase, profiler in profilers.items():
        if requests[phase]:
            path = os.path.join(PROFILE_DIR, f"{phase}-{os.getpid()}-{requests[phase]}.pstats")
            profiler.dump_stats(path)
"""

# The project's gunicorn.conf.py, plus the hook.
BENCH_GUNICORN_CONFIG = """\
import runpy

globals().update(runpy.run_path({project_config!r}))


def worker_exit(server, worker):
    import kokatto_bench_wsgi

    kokatto_bench_wsgi.dump()
"""

BENCH_TABLE = """
CREATE TABLE bench_row (
    id bigserial PRIMARY KEY,
    ref text UNIQUE,
    payload jsonb,
    created_at timestamptz DEFAULT now()
)
"""


# --- the load driver (runs in child processes) ------------------------------------------


@dataclass
class PhaseResult:
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    statuses: Counter = field(default_factory=Counter)  # "201", "409", "error:ConnectionReset"
    samples: list[str] = field(default_factory=list)  # a few unexpected answers
    started: float = 0.0  # time.monotonic(), comparable across processes on Linux
    finished: float = 0.0


def _drive_thread(port, work, expected, timeout, result, lock):
    connection = HTTPConnection(HOST, port, timeout=timeout)
    latencies, statuses, samples = [], Counter(), []
    try:
        while True:
            try:
                url = work.get_nowait()
            except queue.Empty:
                break
            begin = time.perf_counter()
            try:
                connection.request("GET", url, headers={"Connection": "keep-alive"})
                response = connection.getresponse()
                body = response.read()
            except (OSError, ValueError) as exc:  # http.client errors derive from these
                connection.close()
                statuses[f"error:{type(exc).__name__}"] += 1
                if len(samples) < 3:
                    samples.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - begin)
            statuses[str(response.status)] += 1
            if response.status != expected and len(samples) < 3:
                text = " ".join(body[:2000].decode(errors="replace").split())
                samples.append(f"{response.status}: {text[:200]}")
            if response.will_close:
                connection.close()  # the next request() opens a new connection
    finally:
        connection.close()
    with lock:
        result.latencies.extend(latencies)
        result.statuses.update(statuses)
        result.samples.extend(samples[: max(0, 5 - len(result.samples))])


def _drive_process(port, urls, threads, expected, timeout, start_event, out_queue):
    work = queue.Queue()
    for url in urls:
        work.put(url)
    result, lock = PhaseResult(), threading.Lock()
    workers = [
        threading.Thread(
            target=_drive_thread, args=(port, work, expected, timeout, result, lock), daemon=True
        )
        for _ in range(threads)
    ]
    start_event.wait(timeout=60)
    result.started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    result.finished = time.monotonic()
    out_queue.put(result)


def run_phase(*, port, urls, concurrency, processes, expected, phase_timeout):
    """Send every URL once with `concurrency` clients; return the merged PhaseResult."""
    context = multiprocessing.get_context("fork")
    processes = max(1, min(processes, concurrency))
    per_process = [
        concurrency // processes + (i < concurrency % processes) for i in range(processes)
    ]
    chunks = [urls[i::processes] for i in range(processes)]
    start_event, out_queue = context.Event(), context.Queue()
    children = [
        context.Process(
            target=_drive_process,
            args=(port, chunk, threads, expected, 30, start_event, out_queue),
            daemon=True,
        )
        for chunk, threads in zip(chunks, per_process, strict=True)
    ]
    for child in children:
        child.start()
    time.sleep(0.3)  # let the children fork and fill their queues before the clock starts
    start_event.set()
    merged = PhaseResult(started=float("inf"))
    deadline = time.monotonic() + phase_timeout
    for _ in children:
        try:
            part = out_queue.get(timeout=max(1.0, deadline - time.monotonic()))
        except queue.Empty:
            merged.statuses["error:PhaseTimeout"] += 1
            break
        merged.latencies.extend(part.latencies)
        merged.statuses.update(part.statuses)
        merged.samples.extend(part.samples[: max(0, 5 - len(merged.samples))])
        merged.started = min(merged.started, part.started)
        merged.finished = max(merged.finished, part.finished)
    for child in children:
        child.join(timeout=5)
        if child.is_alive():
            child.terminate()
            child.join(timeout=5)
    return merged


def _merge_into(total: PhaseResult, part: PhaseResult) -> None:
    """Add a round's result to the total: its requests, and its duration to the total's."""
    total.latencies.extend(part.latencies)
    total.statuses.update(part.statuses)
    total.samples.extend(part.samples[: max(0, 5 - len(total.samples))])
    total.finished += part.finished - part.started


# --- figures ----------------------------------------------------------------------------


@dataclass
class Figures:
    name: str
    requests: int
    seconds: float
    per_second: float
    p50: float
    p90: float
    p99: float
    max: float
    statuses: Counter
    samples: list[str]


def figures_of(name: str, result: PhaseResult) -> Figures:
    latencies_ms = sorted(latency * 1000 for latency in result.latencies)
    seconds = max(result.finished - result.started, 1e-9)
    if len(latencies_ms) >= 2:
        cuts = statistics.quantiles(latencies_ms, n=100, method="inclusive")
        p50, p90, p99 = cuts[49], cuts[89], cuts[98]
    else:
        p50 = p90 = p99 = latencies_ms[0] if latencies_ms else float("nan")
    return Figures(
        name=name,
        requests=sum(result.statuses.values()),
        seconds=seconds,
        per_second=len(latencies_ms) / seconds,
        p50=p50,
        p90=p90,
        p99=p99,
        max=latencies_ms[-1] if latencies_ms else float("nan"),
        statuses=result.statuses,
        samples=result.samples,
    )


def print_figures(figures: Figures, expected: int) -> None:
    statuses = ", ".join(f"{code}: {count}" for code, count in sorted(figures.statuses.items()))
    print(
        f"{figures.name:<16} {figures.requests:>6} req in {figures.seconds:6.2f} s "
        f"{figures.per_second:8.1f}/s   p50 {figures.p50:6.1f}  p90 {figures.p90:6.1f}  "
        f"p99 {figures.p99:6.1f}  max {figures.max:7.1f} ms   [{statuses}]"
    )
    unexpected = sum(n for code, n in figures.statuses.items() if code != str(expected))
    if unexpected:
        print(f"  !! {unexpected} answers were not {expected}; first ones:")
        for sample in figures.samples:
            print(f"     {sample}")


# --- CPU accounting (Linux /proc) -------------------------------------------------------


def workers_cpu_seconds(master_pid: int) -> float:
    """CPU seconds used so far by the gunicorn master's worker processes."""
    total = 0.0
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
        for pid in children:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += process_cpu_seconds(fields)
    return total


# --- --profile -------------------------------------------------------------------------


def print_profiles(directory: Path, lines: int, clock: str, save_to: Path | None) -> None:
    """Merge each phase's profiles of every worker; print CPU ms a request and the top
    functions by cumulative and own time; save the merged profiles in `save_to` if given."""
    for phase, heading in (("bare", "bare insert"), ("notif", "/notif create")):
        files = sorted(directory.glob(f"{phase}-*.pstats"))
        if not files:
            print(f"no profile of {heading} (did the workers exit cleanly?)")
            continue
        requests = sum(int(path.stem.rsplit("-", 1)[1]) for path in files)
        stats = pstats.Stats(*map(str, files))
        if save_to:
            save_to.mkdir(parents=True, exist_ok=True)
            stats.dump_stats(save_to / f"{phase}.pstats")
        print(
            f"\nprofile of {heading}: {requests} requests (warm-up included), "
            f"{stats.total_tt * 1000 / requests:.2f} ms ({clock}) a request under the profiler"
        )
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            stats.stream = out
            stats.strip_dirs().sort_stats(order).print_stats(lines)
            text = out.getvalue()
            print(f"  top {lines} by {order} (seconds for all requests):")
            print(textwrap.indent(text[text.find("   ncalls") :].rstrip(), "    "))


# --- set-up and tear-down ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_until_answering(port: int, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode} before answering")
        connection = HTTPConnection(HOST, port, timeout=2)
        try:
            connection.request("GET", "/notif")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    raise SystemExit(f"gunicorn did not answer on {HOST}:{port} within {timeout:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # the master stops its workers gracefully
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


# --- the requests -----------------------------------------------------------------------


def notif_urls(count: int, run_id: str, label: str) -> list[str]:
    timestamp = str(int(time.time()))
    urls = []
    for number in range(count):
        parameters = {
            "clientId": CLIENT_ID,
            "appType": APP_TYPE,
            "operation": "create",
            "clientNotifRefId": f"bench-{run_id}-{label}-{number}",
            "customerName": "Budi Santoso",
            "balance": "1230000",
            "dueDate": "09-09-2015",
            "msisdn": "081234567890",
            "timestamp": timestamp,
        }
        parameters["signature"] = sign(parameters, DEMO_SECRET_KEY)
        urls.append("/notif?" + urlencode(parameters))
    return urls


def bare_urls(count: int, run_id: str, label: str) -> list[str]:
    # The same query string as /notif (unsigned parameters, same size), another path.
    return [
        url.replace("/notif?", "/bench/insert?", 1)
        for url in notif_urls(count, run_id, f"bare-{label}")
    ]


# --- main -------------------------------------------------------------------------------


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=3000, help="timed requests per phase")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument(
        "--processes", type=int, default=2, help="client processes the clients are spread over"
    )
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests per phase")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the two phases this many times, alternating, and add the rounds up: on a "
        "busy machine the two sides then share its changing load",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (-w)")
    parser.add_argument("--database", default="kokatto_bench")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="", help="REDIS_URL for the server (optional)")
    parser.add_argument("--phase-timeout", type=float, default=600, help="seconds per phase")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=30,
        default=0,
        metavar="LINES",
        help="profile the gunicorn workers (cProfile) and print the top LINES functions",
    )
    parser.add_argument(
        "--profile-clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="what --profile measures: the workers' CPU time, or wall-clock time (waits too)",
    )
    parser.add_argument(
        "--profile-out",
        type=Path,
        metavar="DIR",
        help="--profile: also save the merged profiles (bare.pstats, notif.pstats) in DIR",
    )
    arguments = parser.parse_args()
    if not 0 < arguments.requests <= 1_000_000 or not 0 < arguments.concurrency <= 512:
        parser.error("--requests must be 1..1000000 and --concurrency 1..512")
    if not 0 < arguments.rounds <= 100:
        parser.error("--rounds must be 1..100")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", arguments.database):
        parser.error("--database: lower-case letters, digits and _ only")
    for url in (arguments.postgres, arguments.redis_url):
        if url and "127.0.0.1" not in url and "localhost" not in url:
            parser.error(f"only loopback servers: {url}")
    return arguments


def main() -> int:
    arguments = parse_arguments()
    run_id = uuid.uuid4().hex[:8]
    temporary = Path(tempfile.mkdtemp(prefix="kokatto-bench-"))
    (temporary / "kokatto_bench_settings.py").write_text(BENCH_SETTINGS)
    (temporary / "kokatto_bench_urls.py").write_text(textwrap.dedent(BENCH_URLS))
    (temporary / "var").mkdir()
    (temporary / "kokatto_bench_wsgi.py").write_text(BENCH_PROFILED_WSGI)
    (temporary / "kokatto_bench_gunicorn.py").write_text(
        BENCH_GUNICORN_CONFIG.format(project_config=str(PROJECT_DIR / "gunicorn.conf.py"))
    )
    (temporary / "profiles").mkdir()

    from cryptography.fernet import Fernet

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH"}
    }
    env.update(
        DATABASE_URL=f"{arguments.postgres}/{arguments.database}",
        SECRET_KEY=f"kokatto-bench-{uuid.uuid4().hex}",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS=HOST,
        # Plain http, as behind a TLS-terminating proxy: no redirect to https.
        SECURE_SSL_REDIRECT="false",
        KOKATTO_VAR_DIR=str(temporary / "var"),
        DJANGO_SETTINGS_MODULE="kokatto_bench_settings",
        PYTHONPATH=f"{temporary}{os.pathsep}{PROJECT_DIR}",
        LOG_LEVEL="WARNING",
        KOKATTO_BENCH_PROFILE_DIR=str(temporary / "profiles"),
        KOKATTO_BENCH_PROFILE_CLOCK=arguments.profile_clock,
    )
    if arguments.redis_url:
        env["REDIS_URL"] = arguments.redis_url

    server, show_log = None, False
    server_log = (temporary / "gunicorn.log").open("w")
    try:
        print(f"database {arguments.database}: create, migrate, seed_demo --force …", flush=True)
        recreate_database(arguments.postgres, arguments.database)
        manage(env, "migrate", "--noinput")
        manage(env, "seed_demo", "--force")
        manage(
            env,
            "shell",
            "-c",
            "from clients.models import Client; "
            f"Client.objects.filter(client_id={CLIENT_ID!r}).update(api_rate_per_minute=10_000_000)",
        )
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as connection:
            connection.execute(BENCH_TABLE)

        port = free_port()
        gunicorn = Path(sys.executable).parent / "gunicorn"
        wsgi = "kokatto_bench_wsgi" if arguments.profile else "kokatto_site.wsgi"
        command = [str(gunicorn), wsgi, "-w", str(arguments.workers)]
        command += ["-b", f"{HOST}:{port}"]
        if arguments.profile:
            command += ["-c", str(temporary / "kokatto_bench_gunicorn.py")]
        print(f"server: {' '.join(command[1:])} (DEBUG off, PostgreSQL)", flush=True)
        server = subprocess.Popen(  # noqa: S603 (a fixed command line, no shell)
            command, cwd=PROJECT_DIR, env=env, stdout=server_log, stderr=subprocess.STDOUT
        )
        wait_until_answering(port, server, timeout=60)

        phase = {
            "port": port,
            "concurrency": arguments.concurrency,
            "processes": arguments.processes,
            "phase_timeout": arguments.phase_timeout,
        }
        print(
            f"load: {arguments.requests} requests a phase (+{arguments.warmup} warm-up), "
            f"{arguments.concurrency} clients in {min(arguments.processes, arguments.concurrency)}"
            f" processes, {os.cpu_count()} CPUs\n",
            flush=True,
        )
        phases = (("bare insert", bare_urls), ("/notif create", notif_urls))
        merged = {name: PhaseResult() for name, _ in phases}
        cpu = {name: Counter() for name, _ in phases}  # "workers", "machine": seconds
        round_rates = {name: [] for name, _ in phases}  # requests/s of each round
        for number in range(arguments.rounds):
            for name, make_urls in phases:
                if arguments.warmup and number == 0:
                    warm = run_phase(
                        urls=make_urls(arguments.warmup, run_id, "warm"), expected=201, **phase
                    )
                    if set(warm.statuses) != {"201"}:
                        print_figures(figures_of(f"{name} (warm-up)", warm), expected=201)
                urls = make_urls(arguments.requests, run_id, f"timed{number}")
                busy = machine_busy_seconds()
                time.sleep(1.0)
                busy = machine_busy_seconds() - busy
                if busy > 0.15:
                    print(
                        f"warning: something else is using {busy * 100:.0f}% of a core while "
                        "the benchmark is idle; the figures below will be low",
                        flush=True,
                    )
                machine, workers = machine_busy_seconds(), workers_cpu_seconds(server.pid)
                timed = run_phase(urls=urls, expected=201, **phase)
                cpu[name]["machine"] += machine_busy_seconds() - machine
                cpu[name]["workers"] += workers_cpu_seconds(server.pid) - workers
                round_figures = figures_of(f"{name} #{number + 1}", timed)
                round_rates[name].append(round_figures.per_second)
                if arguments.rounds > 1:
                    print_figures(round_figures, expected=201)
                _merge_into(merged[name], timed)
                show_log = show_log or set(timed.statuses) != {"201"}
        if arguments.rounds > 1:
            print(f"\nall {arguments.rounds} rounds:")
        results = {}
        for name, _ in phases:
            results[name] = figures_of(name, merged[name])
            print_figures(results[name], expected=201)
            timed_requests = arguments.requests * arguments.rounds
            machine, workers = cpu[name]["machine"], cpu[name]["workers"]
            print(
                f"{'':<16} CPU ms a request: gunicorn workers "
                f"{workers * 1000 / timed_requests:.1f}, whole machine "
                f"{machine * 1000 / timed_requests:.1f} (PostgreSQL, clients, anything else "
                f"{(machine - workers) * 1000 / timed_requests:.1f})",
                flush=True,
            )

        bare, notif = results["bare insert"], results["/notif create"]
        print()
        print(f"throughput ratio /notif ÷ bare: {notif.per_second / bare.per_second:.2f}")
        if arguments.rounds > 2:
            # Each round's /notif against the bare round just before it: the machine's speed
            # drifts by more than a change being measured, and neighbouring rounds share it.
            pairs = zip(round_rates["bare insert"], round_rates["/notif create"], strict=True)
            ratios = sorted(notif_rate / bare_rate for bare_rate, notif_rate in pairs)
            print(
                f"  each round's ratio: median {statistics.median(ratios):.2f}, "
                f"from {ratios[0]:.2f} to {ratios[-1]:.2f}"
            )
        print(f"p99 ratio        /notif ÷ bare: {notif.p99 / bare.p99:.2f}")
        met = notif.per_second >= TARGET_CREATES_PER_SECOND and notif.p99 < TARGET_P99_MS
        all_created = notif.statuses == Counter({"201": notif.requests})
        print(
            f"target (≥{TARGET_CREATES_PER_SECOND} creates/s, p99 < {TARGET_P99_MS} ms): "
            f"{'met' if met else 'NOT met'}; every create 201: {'yes' if all_created else 'NO'}"
        )
        with psycopg.connect(env["DATABASE_URL"]) as connection:
            counts = connection.execute(
                "SELECT (SELECT count(*) FROM notifications_notification),"
                " (SELECT count(*) FROM notifications_delivery),"
                " (SELECT count(*) FROM bench_row)"
            ).fetchone()
        print(f"rows: {counts[0]} notifications, {counts[1]} deliveries, {counts[2]} bench rows")
        if arguments.profile:
            stop_server(server)
            print_profiles(
                temporary / "profiles",
                arguments.profile,
                arguments.profile_clock,
                arguments.profile_out,
            )
        return 0 if all_created else 1
    finally:
        if server is not None:
            stop_server(server)
        server_log.close()
        log = (temporary / "gunicorn.log").read_text(errors="replace")
        if show_log or (server is not None and server.returncode not in (0, None)):
            print(f"gunicorn (exit status {server.returncode}); its log ends:\n{log[-3000:]}")
        if not arguments.keep_db:
            with contextlib.suppress(psycopg.Error):
                drop_database(arguments.postgres, arguments.database)
        shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
