"""How long parsing a large template takes, by size: it should grow linearly.

Run: .venv/bin/python bench/template_parse.py

Parses texts of 30 KB to 480 KB made only of placeholders (`[a]`: the worst
case, one placeholder every three characters; the live preview parses what a
user types on each keystroke) with the cache bypassed and the size cap lifted,
and prints the CPU time of each and its ratio to the one before: about 2 for a
linear parser, about 4 for a quadratic one (past runs: bench/RESULTS.md).
Then the time the preview takes to refuse 240 KB at the default cap, which
never parses it. CPU time of this process (best of three), so other work on a
shared machine counts little; still, read the figures as approximate.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kokatto_site.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402

from templates_app.template_language import TemplateTooLarge, compile_template, parse_template  # noqa: E402


def cpu_seconds(function) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        function()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    previous = None
    for kilobytes in (30, 60, 120, 240, 480):
        text = "[a]" * (kilobytes * 1024 // 3)
        seconds = cpu_seconds(lambda text=text: parse_template(text))
        growth = f"x{seconds / previous:.1f}" if previous else ""
        print(f"parse {kilobytes:>3} KB of [a]: {seconds * 1000:8.1f} ms CPU {growth}")
        previous = seconds

    text = "[a]" * (240 * 1024 // 3)

    def refuse():
        try:
            compile_template(text)
        except TemplateTooLarge:
            return
        raise SystemExit("240 KB was not refused: is TEMPLATE_MAX_CHARACTERS raised?")

    limit = settings.TEMPLATE_MAX_CHARACTERS
    print(
        f"refuse 240 KB at the cap ({limit:,} characters): {cpu_seconds(refuse) * 1e6:.0f} µs CPU"
    )


if __name__ == "__main__":
    main()
