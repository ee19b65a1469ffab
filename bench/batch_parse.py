"""Lines per second of the batch line parser (batches/parsing.py), on one core.

Run: .venv/bin/python bench/batch_parse.py [--lines 1000000]

Writes `--lines` typical batch lines (eight quoted tokens, about 200 bytes, as
in the integration document's example plus a phone number and an email) to a
temporary file, then times, reading the file from disk each time:

1. parse_lines over the whole file (the figure that counts);
2. a resume past the last line (start_after), which reads past every line;
3. two less usual layouts on a fifth of the lines: unquoted tokens, and quoted
   tokens with spaces before commas (the general tokenizer's path);
4. for scale: reading and decoding only, and csv.reader plus a bare dict per
   line (no stripping, no checks, no ParsedLine: a floor, not a rival).

It prints lines/s (wall clock) and CPU µs/line for each, then the peak RSS of
the process after generating the file and after parsing: parsing streams, so
the second stays at the first. Target: at least 300,000 lines/s for 1. Past runs,
when recorded: bench/RESULTS.md.
"""

import argparse
import csv
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batches.parsing import parse_lines

TYPICAL = (
    '"clientId=8002", "appType=ABC", "clientNotifRefId=UNIQ-REF-{n:09d}", '
    '"customerName=John Doe {n}", "balance={balance}", "dueDate=09-09-2015", '
    '"msisdn=+62812{n:08d}", "email=john.doe{n}@example.co.id"\n'
)
UNQUOTED = (
    "clientId=8002,appType=ABC,clientNotifRefId=UNIQ-REF-{n:09d},customerName=John Doe {n},"
    "balance={balance},dueDate=09-09-2015,msisdn=+62812{n:08d},email=john.doe{n}@example.co.id\n"
)
SPACED = TYPICAL.replace('", "', '" , "')


def write_lines(path: Path, template: str, count: int) -> None:
    with path.open("wb") as file:
        for start in range(0, count, 10_000):
            chunk = "".join(
                template.format(n=n, balance=1_230_000 + n)
                for n in range(start, min(start + 10_000, count))
            )
            file.write(chunk.encode())


def measure(label: str, path: Path, count: int, run, expected: int | None = None) -> None:
    """Time `run(file)` over `count` lines; it returns how many lines it yielded."""
    with path.open("rb") as file:
        wall, cpu = time.perf_counter(), time.process_time()
        seen = run(file)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    expected = count if expected is None else expected
    assert seen == expected, f"{label}: {seen} lines, expected {expected}"
    print(f"{label:<44} {count / wall:>12,.0f} lines/s {cpu / count * 1e6:>8.2f} µs/line CPU")


def parse_all(file) -> int:
    return sum(1 for line in parse_lines(file) if not line.rejected)


def resume_past_the_end(file) -> int:
    return sum(1 for _ in parse_lines(file, start_after=sys.maxsize))


def read_and_decode(file) -> int:
    return sum(1 for raw in file if raw.decode("utf-8"))


def csv_dicts(file) -> int:
    rows = csv.reader((raw.decode("utf-8") for raw in file), skipinitialspace=True, strict=True)
    return sum(1 for row in rows if dict(field.split("=", 1) for field in row))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    lines = parser.parse_args().lines
    fifth = max(lines // 5, 1)
    with tempfile.TemporaryDirectory() as directory:
        typical, unquoted, spaced = (Path(directory) / name for name in ("t", "u", "s"))
        started = time.perf_counter()
        write_lines(typical, TYPICAL, lines)
        write_lines(unquoted, UNQUOTED, fifth)
        write_lines(spaced, SPACED, fifth)
        size = typical.stat().st_size
        print(
            f"{lines:,} lines, {size / 1e6:,.0f} MB ({size / lines:.0f} bytes a line), "
            f"written in {time.perf_counter() - started:.1f} s"
        )
        rss_before = peak_rss_mib()
        measure("parse_lines, typical quoted lines", typical, lines, parse_all)
        rss_after = peak_rss_mib()
        measure("resume: start_after past the last line", typical, lines, resume_past_the_end, 0)
        measure("parse_lines, unquoted a=1,b=2 lines", unquoted, fifth, parse_all)
        measure('parse_lines, quoted "a=1" , "b=2" lines', spaced, fifth, parse_all)
        measure("for scale: read + decode only", typical, lines, read_and_decode)
        measure("for scale: csv.reader + bare dict, no checks", typical, lines, csv_dicts)
    print(f"peak RSS: {rss_before:.0f} MiB before parsing, {rss_after:.0f} MiB after")


if __name__ == "__main__":
    main()
