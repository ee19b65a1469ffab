"""Benchmark of the personal-data work of issue 18 on PostgreSQL: the CSV export and the
retention purge, over `--notifications` rows (default 1,000,000).

What it measures, in this process, with the production code and DEBUG off:

1. The rows: `--notifications` DELIVERED notifications of one client, each with a
   DELIVERED SMS delivery, inserted by PostgreSQL itself (INSERT … SELECT over
   generate_series, tests/privacy/many_rows.py), then ANALYZEd.
2. The export: the admin's "Export as CSV" of the whole list, fetched with Django's test
   client as an operator and consumed as it streams (nothing kept): wall time, rows/s,
   bytes, and the process's peak RSS before and after (ru_maxrss). Then the same export
   again under tracemalloc for the peak of Python allocations (tracemalloc slows it).
3. The purge: every notification aged 400 days (one UPDATE), then
   `personal_data_purge()` as the daily schedule runs it, in chunks of
   RETENTION_CHUNK_SIZE: wall time and notifications/s; then a second run, which finds
   nothing left to purge, for the cost of looking (it walks the purged rows' index).

It creates its own database (DROP/CREATE `kokatto_privacy_bench` on 127.0.0.1:5432 as
user postgres), migrates it, and drops it at the end (`--keep-db` keeps it). No Redis.

    .venv/bin/python bench/privacy.py                       # 1,000,000 notifications
    .venv/bin/python bench/privacy.py --notifications 200000
"""

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import drop_database, recreate_database

SERVER = "postgres://postgres@127.0.0.1:5432"
DATABASE = "kokatto_privacy_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=1_000_000)
    parser.add_argument("--keep-db", action="store_true")
    arguments = parser.parse_args()
    recreate_database(SERVER, DATABASE)
    os.environ.update(
        DATABASE_URL=f"{SERVER}/{DATABASE}",
        REDIS_URL="",
        KOKATTO_VAR_DIR=tempfile.mkdtemp(prefix="kokatto-privacy-bench-"),
        DJANGO_SETTINGS_MODULE="kokatto_site.settings",
        SECURE_SSL_REDIRECT="false",
        ADMIN_TWO_FACTOR_REQUIRED="false",
        LOG_LEVEL="WARNING",
    )
    try:
        run(arguments.notifications)
    finally:
        from django.db import connections

        connections.close_all()
        if not arguments.keep_db:
            drop_database(SERVER, DATABASE)


def run(count: int) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client as Browser
    from django.test.utils import setup_test_environment

    from clients.models import Application, Client
    from kokatto_site.retention import personal_data_purge
    from notifications.models import Notification
    from tests.privacy.many_rows import notifications_insert

    setup_test_environment()
    call_command("migrate", verbosity=0)
    client = Client.objects.create(client_id="8002", name="PT Bank Demo Nusantara")
    application = Application.objects.create(client=client, code="ABC")
    started = time.perf_counter()
    notifications_insert(application=application, count=count)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"{count:,} notifications and deliveries inserted in {time.perf_counter() - started:.1f} s"
    )

    browser = Browser()
    browser.force_login(get_user_model().objects.create_superuser("bench", password=None))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    exported, lines = consume(browser)
    seconds = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"export: {lines - 1:,} rows, {exported / 2**20:.1f} MiB in {seconds:.1f} s "
        f"({(lines - 1) / seconds:,.0f} rows/s); peak RSS {rss_before / 1024:.0f} MiB before, "
        f"{rss_after / 1024:.0f} MiB after"
    )
    tracemalloc.start()
    consume(browser)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"export under tracemalloc: peak of Python allocations {peak / 2**20:.1f} MiB")

    table = Notification._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET created_at = created_at - interval '400 days',"  # noqa: S608
            " updated_at = updated_at - interval '400 days'"
        )
        cursor.execute("VACUUM ANALYZE")
    for label in ("purge", "second purge (nothing left)"):
        started = time.perf_counter()
        counts = personal_data_purge()
        seconds = time.perf_counter() - started
        purged = counts.get("notifications", 0)
        print(
            f"{label}: {purged:,} notifications, {counts.get('deliveries', 0):,} deliveries "
            f"in {seconds:.1f} s ({purged / seconds:,.0f} notifications/s)"
        )


def consume(browser) -> tuple[int, int]:
    response = browser.get("/admin/notifications/notification/export/")
    assert response.status_code == 200, response.status_code
    exported = lines = 0
    for chunk in response.streaming_content:
        exported += len(chunk)
        lines += chunk.count(b"\n")
    return exported, lines


if __name__ == "__main__":
    main()
