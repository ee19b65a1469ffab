"""End-to-end benchmark of batch ingestion: one big encrypted batch file, fetched to DONE.

What it measures, in one run, with the production code path and DEBUG off:

1. The ingest. `--lines` lines (default 1,000,000, about 175 bytes each: client
   8002's application ABC of the demo data, its real fields customerName,
   balance, dueDate and msisdn, each line a distinct clientNotifRefId; one line
   in `--bad-every` (1,000: 0.1%) deliberately bad, in turn a bad balance, a
   token without `=`, an unknown appType and a reference repeated from the line
   before) are written to a CSV and encrypted with py7zr the way clients do
   (AES-256, header encryption, LZMA2 at `--preset` 5, 7-Zip's "normal"; the
   demo client's batch password is set with `client.set_batch_password`). Then
   `manage.py ingest_batch FILE --client 8002 --quiet` runs in a child process:
   the clock covers the whole command (Django's start, the copy into the inbox,
   decryption, parsing, validation, the stored chunks, the result file and the
   archived original). It prints lines/second, the child's peak RSS (os.wait4's
   ru_maxrss) and its CPU time, the CPU time of PostgreSQL (this database's
   backends, from /proc) and of other work on the machine meanwhile, and a
   breakdown by phase read off the batch row polled every 0.2 s: until
   `bytes_total` is set (fetch + decrypt to the scratch file), until the
   checkpoint reaches the last line (parse, validate, store), until DONE (result
   file, archive). The counts must come out as written: every good line
   accepted, every bad one rejected.
2. The floor for the same file: the `7z` program (7-Zip's `7z`, `7zz` or `7za`)
   extracting the same archive to /dev/null (`7z x -so -p…`), plus storing rows
   of the same shape with the database's fastest path: PostgreSQL `COPY`
   (psycopg's `cursor.copy()`, text format generated in bulk) of N notification
   and N delivery rows, the two rows the ingest stores a line, into tables made
   `LIKE` the real ones (`INCLUDING ALL`: columns, defaults, indexes and check
   constraints, no foreign keys), one transaction a table. On
   SQLite: `executemany` INSERTs into copies of the tables and their indexes. No
   parsing, no validation, no per-line Python: a floor, not a rival. It prints
   the ratio ingest ÷ floor.
   With `--encryption openpgp` the file is what a bank's gpg writes instead: the CSV
   `gpg --encrypt --sign`ed to the platform's key for the client (made by the platform,
   platform_key_ensure) with a client key made by gpg (`--client-key`: Curve25519 or
   RSA-3072, its public key set on the client), binary, gpg's default compression. The
   floor's extraction is then `gpg --decrypt` of the same file to /dev/null on a key
   ring holding the platform's private key (the signature checked too), and the bench
   also prints the platform's own decryption (the `openpgp` method's open_plaintext, in
   this process: gpg run by the platform, the limits checked, the plaintext written to
   scratch) against `gpg --decrypt --output FILE` into the same directory (and, beside,
   to /dev/null), each the median of three runs taken in turns.
3. `--profile N`: then ingests an N-line file in this process under cProfile,
   with the SQL time by statement kind (a connection.execute_wrapper), the
   cumulative time of the ingest's stages (fetch, decrypt, parse, check,
   reference look-up, inserts, lease renewals, result file, archive) and the
   top functions. cProfile slows Python down (SQL far less), so the shares, not
   the seconds, are what counts.

The benchmark creates its own database (DROP/CREATE `kokatto_batch_bench` on
127.0.0.1:5432 as user postgres, trust auth), migrates it, loads the demo data
(`seed_demo --force`), uses Redis database 13 as the django-q broker (flushed
before and after; `--redis-url ""` for the ORM broker) and drops the database at
the end (`--keep-db` keeps it). `--sqlite` runs on a fresh SQLite file in a
temporary directory instead, with the ORM broker, as `make run` does. Batch
storage and scratch space live in the temporary directory (KOKATTO_VAR_DIR).
No qcluster runs: the dispatch tasks the ingest queues stay queued.

The ingest does not depend on the statistics of notifications_notification (its
reference check probes the unique index whatever the planner knows), but this
server runs with autovacuum off: `--analyze-every N` runs ANALYZE every N
seconds during the ingest, as autovacuum's auto-analyze would, to measure that
case too.

Run it from the project root:

    .venv/bin/python bench/batch_ingest.py                        # 1,000,000 lines
    .venv/bin/python bench/batch_ingest.py --lines 100000 --profile 20000
    .venv/bin/python bench/batch_ingest.py --sqlite --lines 100000
    .venv/bin/python bench/batch_ingest.py --encryption openpgp   # as banks send files

Targets on this 2-core machine (the ingest and its database share the cores):
PostgreSQL, 1,000,000 lines in at most 60 s with a peak RSS under 300 MB;
SQLite, 1,000,000 lines in at most 180 s, on a machine where the floor's COPY of
a million notification rows takes about 9 s (the speed the targets were set at).
The machine's speed changes from day to day, so read each time next to its
floor, measured in the same run. The runs so far: bench/RESULTS.md.
"""

import argparse
import contextlib
import cProfile
import json
import logging
import os
import pstats
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import py7zr

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from support import (  # noqa: E402
    CpuMeter,
    drop_database,
    is_postgres_of,
    machine_busy_seconds,
    manage,
    print_profile_table,
    recreate_database,
)

CLIENT_ID = "8002"
APP_CODE = "ABC"
BATCH_PASSWORD = "kokatto-bench-batch-password"  # noqa: S105 (a stand-in for the bench)
MEMBER = "reminders.csv"

TARGET_SECONDS = {"postgresql": 60, "sqlite": 180}  # for 1,000,000 lines
TARGET_LINES = 1_000_000
TARGET_PEAK_MB = 300  # PostgreSQL only

FIRST_NAMES = [
    "Budi", "Siti", "Agus", "Dewi", "Rudi", "Ayu", "Hendra", "Putri", "Joko", "Ratna",
    "Andi", "Sri", "Eko", "Wulan", "Bambang", "Indah", "Fajar", "Nur", "Yusuf", "Lestari",
]  # fmt: skip
LAST_NAMES = [
    "Santoso", "Wijaya", "Pratama", "Saputra", "Hidayat", "Kusuma", "Nugroho", "Setiawan",
    "Susanto", "Gunawan", "Halim", "Siregar", "Nasution", "Simanjuntak", "Wibowo", "Purnomo",
]  # fmt: skip
BAD_KINDS = ["VALIDATION_ERROR", "MALFORMED_TOKEN", "UNKNOWN_APP_TYPE", "DUPLICATE_REFERENCE"]


# --- the batch file -----------------------------------------------------------------------


def reference_of(prefix: str, number: int) -> str:
    return f"{prefix}-2035-INV-{number:08d}"


def line_values(number: int) -> dict[str, str]:
    """The application fields of line `number` (varied, and valid)."""
    first = FIRST_NAMES[number % len(FIRST_NAMES)]
    middle = FIRST_NAMES[(number // 7) % len(FIRST_NAMES)]
    last = LAST_NAMES[(number // len(FIRST_NAMES)) % len(LAST_NAMES)]
    return {
        "customerName": f"{first} {middle} {last}",
        "balance": str(100_000 + number * 7919 % 49_900_000),
        "dueDate": f"{1 + number % 28:02d}-{1 + number % 12:02d}-2035",
        "msisdn": f"0812{number % 100_000_000:08d}",
    }


def good_line(prefix: str, number: int, **overrides) -> str:
    tokens = {
        "clientId": CLIENT_ID,
        "appType": APP_CODE,
        "clientNotifRefId": reference_of(prefix, number),
        **line_values(number),
        **overrides,
    }
    return ", ".join(f'"{key}={value}"' for key, value in tokens.items())


def bad_line(prefix: str, number: int, kind: str) -> str:
    if kind == "VALIDATION_ERROR":
        return good_line(prefix, number, balance="12x")
    if kind == "MALFORMED_TOKEN":
        return f'"clientId={CLIENT_ID}", "appType={APP_CODE}", oops'
    if kind == "UNKNOWN_APP_TYPE":
        return good_line(prefix, number, appType="NOPE")
    return good_line(prefix, number, clientNotifRefId=reference_of(prefix, number - 1))


def write_batch(path: Path, lines: int, bad_every: int, prefix: str) -> Counter:
    """Write the CSV; returns the expected outcome counts ("ACCEPTED" and each bad kind)."""
    expected = Counter()
    with path.open("w", encoding="utf-8", newline="") as out:
        for start in range(1, lines + 1, 10_000):
            texts = []
            for number in range(start, min(start + 10_000, lines + 1)):
                if bad_every and number % bad_every == 0:
                    kind = BAD_KINDS[(number // bad_every) % len(BAD_KINDS)]
                    texts.append(bad_line(prefix, number, kind))
                    expected[kind] += 1
                else:
                    texts.append(good_line(prefix, number))
                    expected["ACCEPTED"] += 1
            out.write("\n".join(texts) + "\n")
    return expected


def encrypt(csv_path: Path, archive_path: Path, preset: int) -> None:
    filters = [
        {"id": py7zr.FILTER_LZMA2, "preset": preset},
        {"id": py7zr.FILTER_CRYPTO_AES256_SHA256},
    ]
    with py7zr.SevenZipFile(
        archive_path, "w", password=BATCH_PASSWORD, header_encryption=True, filters=filters
    ) as archive:
        archive.write(csv_path, MEMBER)


def make_batch(
    directory: Path,
    name: str,
    lines: int,
    bad_every: int,
    prefix: str,
    preset: int,
    openpgp: "OpenPGPClientSide | None" = None,
):
    """Write and encrypt a batch; returns (archive path, CSV bytes, expected counts)."""
    csv_path = directory / f"{name}.csv"
    started = time.perf_counter()
    expected = write_batch(csv_path, lines, bad_every, prefix)
    size = csv_path.stat().st_size
    written = time.perf_counter() - started
    started = time.perf_counter()
    if openpgp is None:
        archive = directory / f"{name}.7z"
        encrypt(csv_path, archive, preset)
        how = f"py7zr (AES-256, header encryption, LZMA2 preset {preset})"
    else:
        archive = directory / f"{name}.csv.gpg"
        openpgp.encrypt(csv_path, archive)
        how = f"gpg --encrypt --sign ({openpgp.algorithm} client key, gpg's default compression)"
    print(
        f"batch file: {lines:,} lines, {size / 1e6:,.1f} MB of CSV ({size / lines:.0f} bytes a "
        f"line; {lines - expected['ACCEPTED']:,} bad: "
        + ", ".join(f"{expected[kind]:,} {kind}" for kind in BAD_KINDS)
        + f") written in {written:.1f} s; encrypted with {how} to "
        f"{archive.stat().st_size / 1e6:,.2f} MB in {time.perf_counter() - started:.1f} s "
        "(untimed)",
        flush=True,
    )
    csv_path.unlink()
    return archive, size, expected


# --- machine figures ----------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def idle_check() -> None:
    busy = machine_busy_seconds()
    time.sleep(1.0)
    busy = machine_busy_seconds() - busy
    print(
        f"machine: load average {load_average()}, {busy * 100:.0f}% of a core busy in the "
        "last second"
        + (" (something else is running: figures will be low)" if busy > 0.15 else ""),
        flush=True,
    )


class IngestCpuMeter(CpuMeter):
    """PostgreSQL (the backends of `database` and the server's own processes) and everything
    else but the ingest and this process, by command."""

    def __init__(self, database: str, ingest_pid: int):
        self.database, self.ingest_pid = database, ingest_pid
        super().__init__()

    def component(self, entry: Path, pid: int, fields: list[str], command: str) -> str | None:
        # The ingest and its child (the line checker) are counted by wait4; the checker
        # is sampled here too, to tell it from the storing.
        if pid in (os.getpid(), self.ingest_pid):
            return None
        if int(fields[1]) == self.ingest_pid:
            return "line checker"
        if command.startswith("postgres"):
            ours = is_postgres_of(entry, self.database)
            return "postgres" if ours else "other: postgres (other databases)"
        return f"other: {command}"


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) * 1024 / 1e6
    return 0.0


def tree_memory_mb(pid: int) -> tuple[float, float]:
    """RSS and PSS summed over `pid` and its children (the ingest forks its line checker).

    The RSS sum counts the pages the fork shares twice; PSS splits them between the two.
    """
    pids = [pid]
    with contextlib.suppress(OSError, ValueError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    rss = sum(rss_mb(p) for p in pids)
    pss = 0.0
    for p in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for row in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if row.startswith("Pss:"):
                    pss += int(row.split()[1]) * 1024 / 1e6
    return rss, pss


# --- the ingest (a child process) ---------------------------------------------------------


class BatchRowPoll:
    """Reads the batch row the child creates, on its own connection.

    Only rows newer than those there when the poll starts: the demo data holds a batch
    of its own, DONE long before the clock starts.
    """

    def __init__(self, vendor: str, database_url: str, sqlite_path: Path | None):
        if vendor == "postgresql":
            self.connection = psycopg.connect(database_url, autocommit=True)
        else:
            uri = f"file:{sqlite_path}?mode=ro"
            self.connection = sqlite3.connect(uri, uri=True, timeout=5, isolation_level=None)
        self.query = self.QUERY.replace("%s", "%s" if vendor == "postgresql" else "?")
        self.newest = self.connection.execute("SELECT max(id) FROM batches_batch").fetchone()[0]

    QUERY = (
        "SELECT id, status, bytes_total, checkpoint_line, lines_read FROM batches_batch "
        "WHERE id > %s ORDER BY id DESC LIMIT 1"
    )

    def row(self):
        try:
            return self.connection.execute(self.query, (self.newest or 0,)).fetchone()
        except (psycopg.Error, sqlite3.Error):
            return None

    def analyze(self) -> None:
        """What autovacuum's auto-analyze would do, now (PostgreSQL)."""
        with contextlib.suppress(psycopg.Error):
            self.connection.execute("ANALYZE notifications_notification")

    def close(self) -> None:
        self.connection.close()


def run_ingest(arguments, env, archive: Path, lines: int, poll: BatchRowPoll, log_path: Path):
    """Time `manage.py ingest_batch` end to end; returns its figures."""
    command = [
        sys.executable,
        str(PROJECT_DIR / "manage.py"),
        "ingest_batch",
        str(archive),
        "--client",
        CLIENT_ID,
        "--quiet",
    ]
    marks, peaks, tree_peaks = {}, defaultdict(float), [0.0, 0.0]
    phase, last_print, last_analyze = "start", 0.0, 0.0
    with log_path.open("w") as log:
        machine_before = machine_busy_seconds()
        started = time.monotonic()
        child = subprocess.Popen(  # noqa: S603 (a fixed command line, no shell)
            command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        meter = IngestCpuMeter(arguments.database, child.pid)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            now = time.monotonic() - started
            if pid:
                ended = now
                child.returncode = os.waitstatus_to_exitcode(status)
                break
            row = poll.row()
            if row:
                _, state, bytes_total, checkpoint, lines_read = row
                marks.setdefault("received", now)
                if bytes_total:
                    marks.setdefault("decrypted", now)
                if checkpoint >= lines:
                    marks.setdefault("stored", now)
                if state == "DONE":
                    marks.setdefault("done", now)
                phase = (
                    "finish"
                    if "stored" in marks
                    else "lines"
                    if "decrypted" in marks
                    else "decrypt"
                )
                if now - last_print >= 10:
                    last_print = now
                    print(
                        f"  {now:6.1f} s: {phase}, {lines_read:,} lines stored "
                        f"({lines_read / max(now - marks.get('decrypted', now), 1e-9):,.0f}/s "
                        f"since decrypted), RSS {rss_mb(child.pid):.0f} MB",
                        flush=True,
                    )
            peaks[phase] = max(peaks[phase], rss_mb(child.pid))
            tree_peaks[:] = map(max, tree_peaks, tree_memory_mb(child.pid))
            meter.sample()
            if arguments.analyze_every and now - last_analyze >= arguments.analyze_every:
                last_analyze = now
                poll.analyze()
            time.sleep(0.2)
        machine = machine_busy_seconds() - machine_before
    child_cpu = usage.ru_utime + usage.ru_stime
    return {
        "seconds": ended,
        "returncode": child.returncode,
        "peak_mb": usage.ru_maxrss * 1024 / 1e6,
        "phase_peaks": dict(peaks),
        "tree_rss_mb": tree_peaks[0],
        "tree_pss_mb": tree_peaks[1],
        "child_cpu": child_cpu,
        "child_user": usage.ru_utime,
        "machine_cpu": machine,
        "cpu": meter.totals(),
        "marks": marks,
        "output": log_path.read_text(errors="replace"),
    }


def batch_outcome() -> dict:
    """The ingested batch's counters, and the rejected lines by code (Django, this process)."""
    from batches.models import Batch

    batch = Batch.objects.order_by("-pk").first()
    codes = Counter(batch.rejected_lines.values_list("code", flat=True))
    return {
        "batch": batch,
        "codes": codes,
        "notifications": batch.notifications.count(),
    }


def print_ingest(arguments, vendor, result, outcome, expected, size) -> tuple[float, bool]:
    lines = arguments.lines
    seconds = result["seconds"]
    batch = outcome["batch"]
    print()
    print(
        f"ingest ({vendor}): {lines:,} lines in {seconds:.2f} s end to end: "
        f"{lines / seconds:,.0f} lines/s, {size / 1e6 / seconds:.1f} MB/s of CSV; "
        f"peak RSS {result['peak_mb']:.0f} MB (child, os.wait4 ru_maxrss); exit code "
        f"{result['returncode']}"
    )
    marks = result["marks"]
    stages = [
        ("start-up, copy into the inbox, batch row", None, "received"),
        ("fetch + decrypt to scratch", "received", "decrypted"),
        ("parse, validate, store in chunks", "decrypted", "stored"),
        ("result file, archive, DONE", "stored", "done"),
    ]
    print("  by phase (the batch row polled every 0.2 s, so ±0.2 s each):")
    previous = 0.0
    for label, begin, end in stages:
        if end not in marks:
            continue
        begins = marks.get(begin, previous) if begin else 0.0
        length = marks[end] - begins
        previous = marks[end]
        rate = f"  ({lines / length:,.0f} lines/s)" if end == "stored" and length > 0 else ""
        print(f"    {label:<42} {length:7.2f} s{rate}")
    if "done" in marks:
        print(f"    {'exit (after DONE)':<42} {seconds - marks['done']:7.2f} s")
    peaks = ", ".join(f"{phase} {mb:.0f} MB" for phase, mb in result["phase_peaks"].items())
    print(f"  RSS peaks by phase (polled, the ingesting process): {peaks}")
    print(
        f"  with its line-checking child (polled): RSS summed {result['tree_rss_mb']:.0f} MB "
        f"(shared pages counted twice), PSS summed {result['tree_pss_mb']:.0f} MB"
    )
    cpu = result["cpu"]
    postgres = cpu["postgres"]
    others = Counter({k: v for k, v in cpu.items() if k.startswith("other: ")})
    rest = result["machine_cpu"] - result["child_cpu"] - postgres
    print(
        f"  CPU: ingest process {result['child_cpu']:.1f} s ({result['child_user']:.1f} s user, "
        f"{result['child_cpu'] / seconds * 100:.0f}% of a core; its line checker "
        f"{cpu['line checker']:.1f} s of it, sampled)"
        + (f", PostgreSQL (this database) {postgres:.1f} s" if postgres else "")
        + f", other work on the machine {rest:.1f} s ({rest / seconds * 100:.0f}% of a core"
        + (
            ": " + ", ".join(f"{k[7:]} {v:.1f} s" for k, v in others.most_common(3) if v >= 0.1)
            if others
            else ""
        )
        + f"); {os.cpu_count()} cores, load average now {load_average()}"
    )
    if rest > 0.2 * seconds:
        print(
            "  !! other processes took a share of the 2 cores during the run: the figures "
            "are pessimistic"
        )
    wanted_rejected = lines - expected["ACCEPTED"]
    codes = outcome["codes"]
    correct = (
        batch.status == "DONE"
        and (batch.lines_read, batch.lines_accepted, batch.lines_rejected)
        == (lines, expected["ACCEPTED"], wanted_rejected)
        and outcome["notifications"] == expected["ACCEPTED"]
        and all(codes[kind] == expected[kind] for kind in BAD_KINDS)
    )
    print(
        f"  batch {batch.pk} {batch.status}: {batch.lines_read:,} read, "
        f"{batch.lines_accepted:,} accepted, {batch.lines_rejected:,} rejected "
        f"({', '.join(f'{n:,} {code}' for code, n in codes.most_common())}); "
        f"{outcome['notifications']:,} notifications; as written: {'yes' if correct else 'NO'}"
    )
    if not correct or result["returncode"]:
        print(textwrap.indent(result["output"][-3000:], "  | "))
    return seconds, correct and result["returncode"] == 0


# --- the floor ------------------------------------------------------------------------------


def seven_zip_program() -> str | None:
    for name in ("7z", "7zz", "7za"):
        if found := shutil.which(name):
            return found
    return None


def floor_extract(program: str, archive: Path) -> float:
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 (a fixed command line, no shell)
        [program, "x", "-so", f"-p{BATCH_PASSWORD}", str(archive)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=True,
    )
    return time.perf_counter() - started


class OpenPGPClientSide:
    """The client's gpg, on a key ring of its own, and the platform's key for the floor.

    The client's key pair (`--client-key`: RSA-3072 or Curve25519) is made with gpg and
    its public key set on the client; the platform's key pair for the client is made by
    the platform (platform_key_ensure). Batches are `gpg --encrypt --sign` to the platform's
    key, as the README tells clients to. The floor decrypts with `gpg --decrypt` on a
    key ring holding the platform's private key.
    """

    def __init__(self, directory: Path, algorithm: str) -> None:
        self.algorithm = algorithm
        self.home = Path(tempfile.mkdtemp(prefix="bench-client-gpg-"))  # short: agent socket
        self.floor_home = Path(tempfile.mkdtemp(prefix="bench-floor-gpg-"))
        self.client_fingerprint = ""
        self.platform_fingerprint = ""

    def gpg(self, *args: str, home: Path | None = None, **kwargs):
        return subprocess.run(  # noqa: S603 (a fixed command line, no shell)
            ["gpg", "--homedir", str(home or self.home), "--batch", "--yes", *args],  # noqa: S607
            capture_output=True,
            check=True,
            **kwargs,
        )

    def set_up(self, client) -> None:
        """Make the client's key, give the platform its public key, take the platform's."""
        from batches.openpgp_keys import client_key_set, platform_key_ensure

        algo = {"rsa3072": "rsa3072", "cv25519": "future-default"}[self.algorithm]
        uid = "Bench client <batches@client.invalid>"
        self.gpg("--passphrase", "", "--quick-gen-key", uid, algo, "default", "never")
        listing = self.gpg("--with-colons", "--list-keys", uid).stdout.decode()
        self.client_fingerprint = next(
            line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")
        )
        if algo == "rsa3072":
            self.gpg("--passphrase", "", "--quick-add-key", self.client_fingerprint, algo, "encr")
        client_public = self.gpg("--armor", "--export", uid).stdout.decode()
        client_key_set(client, client_public)
        platform = platform_key_ensure(client)
        self.platform_fingerprint = platform.fingerprint
        self.gpg("--import", input=platform.public_key.encode())
        self.gpg("--import", home=self.floor_home, input=platform.private_key().encode())
        self.gpg("--import", home=self.floor_home, input=client_public.encode())

    def encrypt(self, csv_path: Path, archive: Path) -> None:
        self.gpg(
            "--trust-model", "always", "--encrypt", "--sign",
            "--recipient", self.platform_fingerprint, "--local-user", self.client_fingerprint,
            "--output", str(archive), str(csv_path),
        )  # fmt: skip

    def decrypt_floor(self, archive: Path, output: Path | None = None) -> float:
        """`gpg --decrypt` of the file, verifying the signature, to `output` (None: to
        /dev/null): its seconds."""
        started = time.perf_counter()
        subprocess.run(  # noqa: S603 (a fixed command line, no shell)
            ["gpg", "--homedir", str(self.floor_home), "--batch", "--yes",  # noqa: S607
             "--trust-model", "always", "--decrypt",
             "--output", str(output) if output else "-", str(archive)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        if output:
            output.unlink()
        return seconds

    def close(self) -> None:
        for home in (self.home, self.floor_home):
            subprocess.run(  # noqa: S603 (a fixed command line, no shell)
                ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],  # noqa: S607
                capture_output=True,
                check=False,
            )
            shutil.rmtree(home, ignore_errors=True)


def floor_rows(prefix: str, batch_id: int) -> dict:
    """Per-table (model, values) for the floor's rows: what the ingest stores a line.

    `values(n)` gives row n's varying columns; the others come from the model's
    fields (their default, or the now of the run for timestamps).
    """
    from clients.models import Application
    from notifications.models import Delivery, Notification

    application = Application.objects.select_related("client").get(
        client__client_id=CLIENT_ID, code=APP_CODE
    )
    client_id = application.client_id

    def notification(n):
        return {
            "id": n,
            "client_id": client_id,
            "application_id": application.pk,
            "reference": reference_of(prefix, n),
            "params": json.dumps(line_values(n)),
            "source": "batch",
            "batch_id": batch_id,
            "batch_line": n,
            "expires_at": "2035-09-09 23:59:59.999999+07",
        }

    def delivery(n):
        return {"id": n, "notification_id": n, "medium": "sms", "recipient": f"+62812{n:08d}"}

    return {
        "floor_notification": (Notification, notification),
        "floor_delivery": (Delivery, delivery),
    }


def constant_columns(model, varying: set[str], now: str) -> dict[str, object]:
    """Values for the columns the floor does not vary: defaults, now, "" or 0 or NULL."""
    from django.db import models

    constants = {}
    for field in model._meta.concrete_fields:
        if field.column in varying:
            continue
        if field.null:
            value = None
        elif isinstance(field, models.DateTimeField):
            value = now
        elif field.has_default():
            value = field.get_default()
            if isinstance(field, models.JSONField):
                value = json.dumps(value)
            elif isinstance(value, str):
                value = str(value)  # a TextChoices member: its plain value
        elif isinstance(field, models.CharField | models.TextField):
            value = ""
        else:
            value = 0
        constants[field.column] = value
    return constants


def floor_postgresql(database_url: str, lines: int, batch_id: int) -> dict[str, float]:
    """COPY the rows into LIKE copies of the two tables; seconds by table."""
    now = datetime.now(UTC).isoformat()
    seconds = {}
    with psycopg.connect(database_url, autocommit=True) as connection:
        for table, (model, values) in floor_rows("FLOOR", batch_id).items():
            source = model._meta.db_table
            connection.execute(f"DROP TABLE IF EXISTS {table}")
            connection.execute(f"CREATE TABLE {table} (LIKE {source} INCLUDING ALL)")
            varying = list(values(1))
            constants = constant_columns(model, set(varying), now)
            columns = varying + list(constants)
            tail = "\t".join(r"\N" if v is None else str(v) for v in constants.values())
            started = time.perf_counter()
            with connection.transaction(), connection.cursor() as cursor:
                copy_sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                with cursor.copy(copy_sql) as copy:
                    for first in range(1, lines + 1, 50_000):
                        rows = (
                            "\t".join(str(v) for v in values(n).values()) + "\t" + tail + "\n"
                            for n in range(first, min(first + 50_000, lines + 1))
                        )
                        copy.write("".join(rows))
            seconds[table] = time.perf_counter() - started
            connection.execute(f"DROP TABLE {table}")
    return seconds


FOREIGN_KEY = re.compile(r' REFERENCES "\w+" \("\w+"\)( DEFERRABLE INITIALLY DEFERRED)?')


def floor_sqlite(path: Path, lines: int, batch_id: int) -> dict[str, float]:
    """executemany INSERTs into copies of the two tables and their indexes."""
    now = datetime.now(UTC).isoformat(sep=" ")
    seconds = {}
    connection = sqlite3.connect(path, isolation_level=None, timeout=20)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    try:
        for table, (model, values) in floor_rows("FLOOR", batch_id).items():
            source = model._meta.db_table
            connection.execute(f"DROP TABLE IF EXISTS {table}")
            schema = connection.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL",
                [source],
            ).fetchall()
            for kind, name, sql in sorted(schema, key=lambda row: row[0] != "table"):
                sql = sql.replace(f'"{source}"', f'"{table}"', 1)
                if kind == "index":
                    sql = sql.replace(f'"{name}"', f'"floor_{name}"', 1)
                # Foreign keys are left out of the floor.
                sql = FOREIGN_KEY.sub("", sql)
                connection.execute(sql)
            varying = list(values(1))
            constants = constant_columns(model, set(varying), now)
            columns = varying + list(constants)
            tail = tuple(constants.values())
            placeholders = ", ".join("?" * len(columns))
            # The bench's own table and the model's columns: nothing from outside.
            insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608
            started = time.perf_counter()
            for first in range(1, lines + 1, 50_000):
                rows = (
                    tuple(values(n).values()) + tail
                    for n in range(first, min(first + 50_000, lines + 1))
                )
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(insert, rows)
                connection.execute("COMMIT")
            seconds[table] = time.perf_counter() - started
            connection.execute(f"DROP TABLE {table}")
    finally:
        connection.close()
    return seconds


def run_floor(vendor, env, archive, lines, batch_id, sqlite_path, openpgp) -> float | None:
    print()
    if openpgp is not None:
        idle_check()
        extract = openpgp.decrypt_floor(archive)
        what = "gpg --decrypt (to /dev/null)"
    elif program := seven_zip_program():
        idle_check()
        extract = floor_extract(program, archive)
        what = f"{Path(program).name} x -so (to /dev/null)"
    else:
        print("floor: no 7z program (7z, 7zz or 7za) on PATH: apt-get install 7zip; floor skipped")
        return None
    print(f"floor: {what}: {extract:.2f} s ({lines / extract:,.0f} lines/s)", flush=True)
    if vendor == "postgresql":
        stored = floor_postgresql(env["DATABASE_URL"], lines, batch_id)
        how = "COPY (text format, one transaction a table) into LIKE … INCLUDING ALL tables"
    else:
        stored = floor_sqlite(sqlite_path, lines, batch_id)
        how = "executemany INSERT (50,000 rows a transaction) into copies with their indexes"
    for table, seconds in stored.items():
        print(f"       {table:<22} {lines:,} rows in {seconds:6.2f} s ({lines / seconds:,.0f}/s)")
    total = extract + sum(stored.values())
    print(f"       {how}; floor total {total:.2f} s ({lines / total:,.0f} lines/s)")
    return total


def platform_decryption_seconds(client, archive: Path, workdir: Path) -> float:
    """The platform's own decryption of the file (the `openpgp` method, limits checked,
    plaintext written to a scratch file), in this process: its seconds."""
    from django.conf import settings

    from batches.client_credentials import ClientCredentials
    from batches.decryption import Limits, get_decryption

    limits = Limits(
        max_bytes=settings.BATCH_MAX_UNCOMPRESSED_BYTES,
        max_ratio=settings.BATCH_MAX_RATIO,
        max_lines=settings.BATCH_MAX_LINES,
    )
    started = time.perf_counter()
    with (
        archive.open("rb") as source,
        get_decryption("openpgp").open_plaintext(
            source, credentials=ClientCredentials(client), limits=limits, workdir=workdir
        ),
    ):
        return time.perf_counter() - started


def print_decryption_ratio(client, archive: Path, openpgp, workdir: Path, rounds: int = 3):
    """The platform's decryption against `gpg --decrypt` of the same file, in turns.

    Both write the plaintext to a file in the same directory, as the platform must (the
    parser reads it once gpg has checked it whole); gpg to /dev/null is printed beside.
    """
    ours, to_file, to_null = [], [], []
    for _ in range(rounds):
        ours.append(platform_decryption_seconds(client, archive, workdir))
        to_file.append(openpgp.decrypt_floor(archive, workdir / "gpg-plaintext.csv"))
        to_null.append(openpgp.decrypt_floor(archive))
    ours, to_file, to_null = map(statistics.median, (ours, to_file, to_null))
    print(
        f"decryption (medians of {rounds}, in turns): the platform's openpgp method "
        f"{ours:.2f} s, gpg --decrypt --output FILE {to_file:.2f} s: ratio "
        f"{ours / to_file:.2f} (aim ≤ 1.3); gpg --decrypt to /dev/null {to_null:.2f} s "
        f"(ratio {ours / to_null:.2f}); load average {load_average()}"
    )


# --- the in-process profile ---------------------------------------------------------------

QUERY_TABLE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"(\w+)"')

# Parsing and checking run in the forked line-checking process, which cProfile does not see.
STAGES = [
    ("batches/ingest.py", "_fetch", "fetch (storage → scratch)"),
    ("batches/decryption.py", "_extract_csv", "decrypt (py7zr → plaintext.csv)"),
    ("batches/openpgp_decryption.py", "_decrypt", "decrypt (gpg → plaintext.csv)"),
    ("batches/line_checking.py", "checked_chunks", "waiting for checked chunks"),
    ("batches/ingest.py", "_store_chunk", "storing chunks"),
    ("notifications/intake.py", "notifications_insert", "  of which: notifications_insert"),
    ("batches/ingest.py", "_write_under_lease", "  of which: _write_under_lease"),
    ("batches/results.py", "result_write", "result_write (result file)"),
    ("batches/ingest.py", "_put_away", "_put_away (archive original)"),
    ("py7zr/helpers.py", "calculate_key", "  py7zr key derivations (all)"),
]


class SqlTimer:
    """A connection.execute_wrapper adding up the time of each statement kind."""

    def __init__(self):
        self.seconds, self.count = Counter(), Counter()

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            words = sql.split(None, 1)
            verb = words[0].upper() if words else "?"
            table = QUERY_TABLE.search(sql)
            kind = f"{verb} {table.group(1) if table else ''}".strip()
            self.seconds[kind] += time.perf_counter() - started
            self.count[kind] += 1


def profile_in_process(arguments, temporary: Path, openpgp) -> None:
    from django.db import connection

    from batches.inbox import batch_receive
    from batches.ingest import batch_ingest, copy_into_inbox
    from clients.models import Client

    lines = arguments.profile
    print()
    print(f"profile: {lines:,} lines ingested in this process under cProfile")
    archive, _, expected = make_batch(
        temporary, "profile", lines, arguments.bad_every, "PROF", arguments.preset, openpgp
    )
    client = Client.objects.get(client_id=CLIENT_ID)
    name = copy_into_inbox(client, archive)
    batch = batch_receive(client=client, name=name, queue=False)
    timer = SqlTimer()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    with connection.execute_wrapper(timer):
        profiler.enable()
        status = batch_ingest(batch_id=batch.pk)
        profiler.disable()
    seconds = time.perf_counter() - started
    batch.refresh_from_db()
    print(
        f"  {status}: {batch.lines_accepted:,} accepted, {batch.lines_rejected:,} rejected "
        f"(expected {expected['ACCEPTED']:,} accepted) in {seconds:.2f} s under cProfile"
    )
    sql_total = sum(timer.seconds.values())
    print(
        f"  SQL through Django's cursor (round trips, server included): {sql_total:.2f} s = "
        f"{sql_total / seconds * 100:.0f}% of the run, by kind:"
    )
    for kind, spent in timer.seconds.most_common(10):
        print(f"    {spent:7.2f} s {timer.count[kind]:6,} x {kind}")

    stats = pstats.Stats(profiler)
    print("  stages (cumulative, cProfile):")
    for path, function, label in STAGES:
        spent = sum(
            cumulative
            for (filename, _, name), (_, _, _, cumulative, _) in stats.stats.items()
            if name == function and filename.endswith(path)
        )
        print(f"    {label:<38} {spent:7.2f} s  {spent / seconds * 100:4.0f}%")
    print_profile_table(profiler, "tottime", 25, "  top 25 functions by tottime:")


# --- main -----------------------------------------------------------------------------------


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=TARGET_LINES, help="lines of the batch")
    parser.add_argument(
        "--bad-every", type=int, default=1000, help="one bad line in this many (0: none)"
    )
    parser.add_argument("--preset", type=int, default=5, help="LZMA2 preset of the archive")
    parser.add_argument(
        "--encryption",
        choices=("7z", "openpgp"),
        default="7z",
        help="how the client encrypts the batch file",
    )
    parser.add_argument(
        "--client-key",
        choices=("cv25519", "rsa3072"),
        default="cv25519",
        help="openpgp: the client's key (signs the file)",
    )
    parser.add_argument("--chunk", type=int, default=0, help="BATCH_CHUNK_LINES (0: the default)")
    parser.add_argument(
        "--profile", type=int, default=0, help="then profile N lines in-process (0: no)"
    )
    parser.add_argument(
        "--analyze-every",
        type=float,
        default=0,
        help="PostgreSQL: ANALYZE the notifications every N seconds during the ingest, as "
        "autovacuum's auto-analyze would (0: never)",
    )
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead")
    parser.add_argument("--database", default="kokatto_batch_bench")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    arguments = parser.parse_args()
    if not 0 < arguments.lines <= 5_000_000 or not 0 <= arguments.profile <= 1_000_000:
        parser.error("--lines must be 1..5000000 and --profile 0..1000000")
    if arguments.bad_every < 0 or arguments.bad_every == 1 or not 0 <= arguments.preset <= 9:
        parser.error("--bad-every must be 0 or 2 and more; --preset 0..9")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", arguments.database):
        parser.error("--database: lower-case letters, digits and _ only")
    for url in (arguments.postgres, arguments.redis_url):
        if url and "127.0.0.1" not in url and "localhost" not in url:
            parser.error(f"only loopback servers: {url}")
    return arguments


def bench_environment(arguments, temporary: Path) -> dict[str, str]:
    from cryptography.fernet import Fernet

    dropped = {"DEBUG", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH", "DATABASE_URL"}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in dropped and not key.startswith(("BATCH_", "Q_", "LOG_LEVEL"))
    }
    if arguments.sqlite:
        database_url = f"sqlite:///{temporary / 'bench.sqlite3'}"
    else:
        database_url = f"{arguments.postgres}/{arguments.database}"
    env.update(
        DATABASE_URL=database_url,
        DEBUG="false",
        SECRET_KEY=f"kokatto-batch-bench-{uuid.uuid4().hex}",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        KOKATTO_VAR_DIR=str(temporary / "var"),
        DJANGO_SETTINGS_MODULE="kokatto_site.settings",
        PYTHONPATH=str(PROJECT_DIR),
    )
    if arguments.redis_url and not arguments.sqlite:
        env["REDIS_URL"] = arguments.redis_url
    if arguments.chunk:
        env["BATCH_CHUNK_LINES"] = str(arguments.chunk)
    return env


def flush_redis(url: str) -> None:
    with contextlib.suppress(Exception):
        import redis

        redis.Redis.from_url(url).flushdb()


def main() -> int:
    arguments = parse_arguments()
    vendor = "sqlite" if arguments.sqlite else "postgresql"
    temporary = Path(tempfile.mkdtemp(prefix="kokatto-batch-bench-"))
    (temporary / "var").mkdir()
    sqlite_path = temporary / "bench.sqlite3" if arguments.sqlite else None
    print(f"machine: {os.cpu_count()} CPUs, load average {load_average()}", flush=True)
    created_database, poll, ok, openpgp = False, None, False, None
    try:
        env = bench_environment(arguments, temporary)
        broker = env.get("REDIS_URL") or "the ORM broker"
        if arguments.sqlite:
            print(f"database: SQLite {sqlite_path}: migrate, seed_demo --force …", flush=True)
        else:
            print(
                f"database {arguments.database}: create, migrate, seed_demo --force …", flush=True
            )
            recreate_database(arguments.postgres, arguments.database)
            created_database = True
        if env.get("REDIS_URL"):
            flush_redis(env["REDIS_URL"])
        manage(env, "migrate", "--noinput")
        manage(env, "seed_demo", "--force")

        os.environ.update(env)
        import django

        django.setup()
        logging.getLogger("django-q").setLevel(logging.WARNING)  # one line per queued task
        from django.conf import settings
        from django.db import connection

        from clients.models import Client

        client = Client.objects.get(client_id=CLIENT_ID)
        if arguments.encryption == "openpgp":
            openpgp = OpenPGPClientSide(temporary, arguments.client_key)
            openpgp.set_up(client)
        client.set_batch_password(BATCH_PASSWORD)
        client.batch_encryption = arguments.encryption
        client.save()
        if vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW synchronous_commit")
                synchronous_commit = cursor.fetchone()[0]
                cursor.execute("SHOW autovacuum")
                autovacuum = cursor.fetchone()[0]
            server = f"PostgreSQL, synchronous_commit={synchronous_commit}, autovacuum={autovacuum}"
            if arguments.analyze_every:
                server += f" (ANALYZE notifications_notification every {arguments.analyze_every} s)"
            elif autovacuum == "off":
                server += " (no statistics as the table grows: see --analyze-every)"
        else:
            server = "SQLite (WAL, synchronous=NORMAL)"
        print(
            f"{server}; broker {broker}; BATCH_CHUNK_LINES {settings.BATCH_CHUNK_LINES}; "
            f"DEBUG {settings.DEBUG}",
            flush=True,
        )
        connection.close()

        archive, size, expected = make_batch(
            temporary,
            "reminders",
            arguments.lines,
            arguments.bad_every,
            "REF",
            arguments.preset,
            openpgp,
        )

        # --- the ingest
        idle_check()
        poll = BatchRowPoll(vendor, env["DATABASE_URL"], sqlite_path)
        result = run_ingest(
            arguments, env, archive, arguments.lines, poll, temporary / "ingest.log"
        )
        poll.close()
        poll = None
        outcome = batch_outcome()
        seconds, ok = print_ingest(arguments, vendor, result, outcome, expected, size)
        connection.close()

        # --- the floor
        floor = run_floor(
            vendor, env, archive, arguments.lines, outcome["batch"].pk, sqlite_path, openpgp
        )
        if openpgp is not None:
            print_decryption_ratio(client, archive, openpgp, temporary)
        print()
        if floor:
            print(f"ratio ingest ÷ floor: {seconds / floor:.1f} ({seconds:.2f} s ÷ {floor:.2f} s)")
        target = TARGET_SECONDS[vendor] * arguments.lines / TARGET_LINES
        met = seconds <= target and ok
        scaled = "" if arguments.lines == TARGET_LINES else " (scaled to this many lines)"
        if vendor == "postgresql":
            # The larger of one process's peak and the polled sum over the process and its
            # line checker (which counts the pages they share twice).
            memory = max(result["peak_mb"], result["tree_rss_mb"])
            rss_met = memory < TARGET_PEAK_MB
            print(
                f"target (PostgreSQL: ≤{target:.1f} s{scaled}, peak RSS < {TARGET_PEAK_MB} MB): "
                f"time {'met' if met else 'NOT met'} ({seconds:.2f} s), "
                f"memory {'met' if rss_met else 'NOT met'} ({memory:.0f} MB, the ingest and "
                "its line checker together)"
            )
        else:
            print(
                f"target (SQLite: ≤{target:.1f} s{scaled}): {'met' if met else 'NOT met'} "
                f"({seconds:.2f} s)"
            )

        if arguments.profile:
            profile_in_process(arguments, temporary, openpgp)
        return 0 if ok else 1
    finally:
        if poll is not None:
            poll.close()
        if openpgp is not None:
            openpgp.close()
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if arguments.redis_url and not arguments.sqlite:
            flush_redis(arguments.redis_url)
        if created_database and not arguments.keep_db:
            with contextlib.suppress(psycopg.Error):
                drop_database(arguments.postgres, arguments.database)
        if arguments.keep_db and arguments.sqlite:
            kept = Path(tempfile.gettempdir()) / "kokatto_batch_bench.sqlite3"
            shutil.copy(sqlite_path, kept)
            print(f"SQLite database kept at {kept}")
        shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
