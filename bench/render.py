"""Renders per second of the demo SMS template, on one core.

Run: .venv/bin/python bench/render.py [--seconds 3]

Measures what the delivery pipeline does per message: fill the compiled demo
SMS template (the integration document's text) with one notification's values.
Also prints the rate with filters (rupiah, Indonesian date), the lookup of a
prepared template in its cache (once per delivery part), and the cost of a
cold parse, for scale, and the demo email's HTML body (its values HTML-escaped
and the filled HTML sanitised again). Each figure is the call repeated in
batches of 1,000 in this one process until `--seconds` of wall-clock time have
passed: calls ÷ elapsed time, so other work on the machine lowers it. Target: at
least 200,000 renders/s for the demo SMS. Past runs: bench/RESULTS.md.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kokatto_site.settings")

import django

django.setup()

from clients.parameter_validation import FieldFormat  # noqa: E402
from kokatto_site.demo import DEMO_EMAIL_HTML, DEMO_SMS_BODY  # noqa: E402
from templates_app.template_language import parse_template, prepare  # noqa: E402

FIELDS = {
    "customerName": FieldFormat("text"),
    "balance": FieldFormat("integer"),
    "dueDate": FieldFormat("date", "dd-MM-yyyy"),
}
VALUES = {"customerName": "John Doe", "balance": "1230000", "dueDate": "09-09-2015"}
WITH_FILTERS = DEMO_SMS_BODY.replace("[balance]", "[balance|rupiah]").replace(
    "[dueDate]", "[dueDate|date:d MMMM yyyy]"
)


def rate(function, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(1000):
            function()
        count += 1000
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    seconds = parser.parse_args().seconds

    plain = prepare(DEMO_SMS_BODY, FIELDS)
    filtered = prepare(WITH_FILTERS, FIELDS)
    email_html = prepare(DEMO_EMAIL_HTML, FIELDS, escape_html=True)
    print(f"sample: {plain(VALUES)!r}")
    figures = [
        ("demo SMS template", rate(lambda: plain(VALUES), seconds), "renders/s"),
        ("with rupiah and date filters", rate(lambda: filtered(VALUES), seconds), "renders/s"),
        ("demo email HTML body", rate(lambda: email_html(VALUES), seconds), "renders/s"),
        ("prepare (cache hit)", rate(lambda: prepare(DEMO_SMS_BODY, FIELDS), seconds), "lookups/s"),
        (
            "cold parse (cache bypassed)",
            rate(lambda: parse_template(DEMO_SMS_BODY), seconds),
            "parses/s",
        ),
    ]
    for label, value, unit in figures:
        print(f"{label + ':':<31}{value:>10,.0f} {unit}")


if __name__ == "__main__":
    main()
