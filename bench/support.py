"""Shared by the benchmarks: a fresh PostgreSQL database, manage.py commands, CPU accounting."""

import asyncio
import contextlib
import io
import os
import pstats
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import psycopg

PROJECT_DIR = Path(__file__).resolve().parent.parent


def recreate_database(server_url: str, name: str) -> None:
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *arguments: str) -> str:
    """Run `manage.py ARGUMENTS` with `env`; its stdout, or exit with its error."""
    command = [sys.executable, str(PROJECT_DIR / "manage.py"), *arguments]
    completed = subprocess.run(  # noqa: S603 (a fixed command line, no shell)
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    if completed.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(arguments)} failed:\n{completed.stderr[-3000:]}")
    return completed.stdout


# --- CPU accounting (Linux /proc) -------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds every core has spent busy since boot (all processes)."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / CLOCK_TICKS


def process_cpu_seconds(fields: list[str]) -> float:
    """utime + stime of a /proc/<pid>/stat line's fields after the command."""
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def is_postgres_of(entry: Path, database: str) -> bool:
    """Whether a postgres process works for `database`: its backends, or the server's own
    processes (WAL writer, checkpointer…, which have no client address in their title)."""
    title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return f" {database} " in title or "(" not in title


class CpuMeter:
    """CPU seconds used since it was made, by component. Subclasses name a process's
    component in `component` (None: not counted). Call `sample()` often: a process that
    exits between two samples takes its last interval with it.
    """

    def __init__(self):
        self.baseline = {key: used for key, (_, used) in self._read().items()}
        self.used = {}  # (pid, start time) -> (component, seconds since the baseline)

    def component(self, entry: Path, pid: int, fields: list[str], command: str) -> str | None:
        raise NotImplementedError

    def sample(self) -> None:
        for key, (component, used) in self._read().items():
            self.used[key] = (component, used - self.baseline.get(key, 0.0))

    def totals(self) -> Counter:
        totals = Counter()
        for component, seconds in self.used.values():
            totals[component] += seconds
        return totals

    def _read(self) -> dict:
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                raw = (entry / "stat").read_text()
                command = raw[raw.index("(") + 1 : raw.rindex(")")]
                fields = raw.rsplit(")", 1)[1].split()
                pid = int(entry.name)
                component = self.component(entry, pid, fields, command)
                if component is not None:
                    found[(pid, fields[19])] = (component, process_cpu_seconds(fields))
        return found


def print_profile_table(profiler, order: str, count: int, heading: str) -> None:
    """cProfile's table of the `count` top functions by `order`, under `heading`, indented."""
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(count)
    text = out.getvalue()
    table = text[text.index("   ncalls") :] if "   ncalls" in text else text
    print(heading)
    print(textwrap.indent(table.rstrip(), "    "))


# --- the benchmarks' sinks -------------------------------------------------------------------


async def serve_until_stopped(server, state, control) -> None:
    """Run a sink's asyncio `server` until told to stop on the `control` pipe, answering
    "report" (the `state`'s report) and "reset" meanwhile; says "ready" with its port first."""
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()

    def on_command():
        try:
            command = control.recv()
        except EOFError:  # the benchmark is gone
            command = "stop"
        if command == "report":
            control.send(state.report())
        elif command == "reset":
            state.reset()
            control.send("ok")
        elif not stopped.done():
            stopped.set_result(None)

    loop.add_reader(control.fileno(), on_command)
    control.send(("ready", server.sockets[0].getsockname()[1]))
    await stopped
    loop.remove_reader(control.fileno())
    server.close()
