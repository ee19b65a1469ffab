"""Support's searches and list pages at ten million notifications (PostgreSQL).

What it measures: against its own database `kokatto_support_bench` (created here, migrated
and filled by `manage.py generate_load --notifications N`, default 10,000,000: six load
clients, about 1.4 deliveries and 2.5 status events a notification, six months of dates,
70 % from batch files; `--reuse` keeps a database filled by an earlier run), each search
path and list page of the admin is requested through Django's test client (the whole
request: middleware, admin, queries, template), as a support user and as client staff of
one load client (LOAD02, about a fifth of the rows), DEBUG off. Each is requested once to
warm the caches, then `--repeat` times: the median and the worst are printed, in ms,
against the issue's targets (a search by reference or recipient under 50 ms, every list
page under 300 ms), with the SQL's share of one request. Then every SELECT of the request
reading a notification table (but the row count, which the paginator caps) is run again
with EXPLAIN (ANALYZE, BUFFERS): the slowest one's execution time, buffers, the indexes it
read and any sequential scan of a notification table are printed.

The search terms are real rows picked at random (seeded): a reference, the customer's
phone number written `0812-xxxx-xxxx` and an email address in upper case.

    .venv/bin/python bench/support_search.py [--notifications N] [--reuse] [--repeat 7]
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from support import recreate_database  # noqa: E402

DATABASE = "kokatto_support_bench"
SEARCH_TARGET_MS = 50
LIST_TARGET_MS = 300
BIG_TABLES = ("notifications_notification", "notifications_delivery", "notifications_deliveryevent")


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=10_000_000)
    parser.add_argument("--reuse", action="store_true", help="Keep the filled database.")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--database", default=DATABASE, help=f"default {DATABASE}")
    return parser.parse_args()


def environment(arguments) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DATABASE_URL"}
    }
    var = Path(f"/tmp/kokatto-support-bench-{os.getuid()}")  # noqa: S108 (keys of a bench run)
    var.mkdir(exist_ok=True)
    env.update(
        DATABASE_URL=f"{arguments.postgres}/{arguments.database}",
        DEBUG="false",
        ADMIN_TWO_FACTOR_REQUIRED="false",
        SECRET_KEY=f"kokatto-support-bench-{uuid.uuid4().hex}",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        KOKATTO_VAR_DIR=str(var),
        DJANGO_SETTINGS_MODULE="kokatto_site.settings",
    )
    return env


def run(env, *arguments: str) -> None:
    command = [sys.executable, str(PROJECT_DIR / "manage.py"), *arguments]
    subprocess.run(command, cwd=PROJECT_DIR, env=env, check=True)  # noqa: S603 (fixed command)


def fill(arguments, env) -> None:
    print(
        f"database {arguments.database}: create, migrate, generate_load {arguments.notifications:,}"
    )
    recreate_database(arguments.postgres, arguments.database)
    run(env, "migrate", "--noinput", "-v0")
    started = time.perf_counter()
    run(env, "generate_load", "--notifications", str(arguments.notifications), "--force")
    print(f"fill: {time.perf_counter() - started:.0f} s", flush=True)


def sizes() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples::bigint, pg_total_relation_size(oid) FROM pg_class"
            " WHERE relname = ANY(%s) ORDER BY relname",
            [list(BIG_TABLES)],
        )
        return "; ".join(
            f"{name}: {rows:,} rows, {size / 2**30:.1f} GiB" for name, rows, size in cursor
        )


def users():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from clients.models import Client
    from clients.roles import CLIENT_STAFF, SUPPORT

    model = get_user_model()
    support, _ = model.objects.get_or_create(username="bench-support", defaults={"is_staff": True})
    support.groups.add(Group.objects.get(name=SUPPORT))
    staff, _ = model.objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    staff.groups.add(Group.objects.get(name=CLIENT_STAFF))
    client = Client.objects.get(client_id="LOAD02")
    client.staff.add(staff)
    return support, staff, client


def samples(rng, client):
    """A random notification of `client` with an SMS and an email delivery, and a batch."""
    from notifications.models import Delivery, Notification

    last = Notification.objects.order_by("-pk").values_list("pk", flat=True).first()
    while True:
        pk = rng.randrange(1, last)
        deliveries = dict(
            Delivery.objects.filter(notification_id=pk).values_list("medium", "recipient")
        )
        notification = Notification.objects.filter(pk=pk, client=client, source="batch").first()
        if notification and "email" in deliveries:
            break
    phone = deliveries["sms"]  # +62812…: written as a customer says it, 0812-xxxx-xxxx
    national = "0" + phone[3:]
    written = f"{national[:4]}-{national[4:8]}-{national[8:]}"
    return notification, written, deliveries["email"].upper()


def timed(browser, url, params, repeat):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = browser.get(url, params, secure=True)
    assert response.status_code == 200, (url, params, response.status_code)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = browser.get(url, params, secure=True)
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        browser.get(url, params, secure=True)
    rows = len(response.context["cl"].result_list) if response.context.get("cl") else None
    return times, queries.captured_queries, rows


def explained(sql: str) -> tuple[float, set[str], set[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of a statement: its time, the indexes it read, the big
    tables it scanned sequentially."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
        [plan] = cursor.fetchone()[0]
    indexes, scans = set(), set()

    def walk(node):
        if node.get("Index Name"):
            indexes.add(node["Index Name"])
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name", "") in BIG_TABLES:
            scans.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return plan["Execution Time"], indexes, scans


def plans_summary(queries) -> str:
    """Every SELECT reading a notification table but the row count (which the paginator
    caps), run again with EXPLAIN ANALYZE: the slowest's time, indexes read, scans."""
    plans = [
        explained(q["sql"])
        for q in queries
        if q["sql"].startswith("SELECT")
        and "notifications_" in q["sql"]
        and "COUNT(" not in q["sql"].upper()
    ]
    if not plans:
        return "—"
    slowest = max(time for time, _, _ in plans)
    indexes = sorted(
        {
            index
            for _, used, _ in plans
            for index in used
            if not index.startswith(("clients_", "pg_", "application_id"))  # small tables
        }
    )
    scans = sorted({table for _, _, scanned in plans for table in scanned})
    text = f"slowest {slowest:.1f} ms; indexes: {', '.join(indexes) or 'none'}"
    return text + (f"; SEQ SCAN of {', '.join(scans)}" if scans else "")


def main() -> int:
    arguments = parse_arguments()
    env = environment(arguments)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    if not arguments.reuse:
        fill(arguments, env)
    os.environ.update(env)
    import django

    django.setup()
    from django.test import Client as Browser
    from django.test.utils import setup_test_environment

    setup_test_environment()
    from django.db import connection

    connection.ensure_connection()
    print(sizes(), flush=True)
    support, staff, staff_client = users()
    rng = random.Random(arguments.seed)  # noqa: S311 (picking sample rows)
    from clients.models import Client

    big_client = Client.objects.get(client_id="LOAD01")
    notification, phone, email = samples(rng, staff_client)
    _, other_phone, _ = samples(rng, big_client)
    application = big_client.applications.first()
    notifications = "/admin/notifications/notification/"
    deliveries = "/admin/notifications/delivery/"
    week_end = notification.created_at.replace(microsecond=0)
    since, until = (week_end - timedelta(days=7)).isoformat(), week_end.isoformat()
    paths = [
        ("search", "reference", notifications, {"q": notification.reference}),
        ("search", f"phone {phone}", notifications, {"q": phone}),
        ("search", "email (upper case)", notifications, {"q": email}),
        ("search", "deliveries: reference", deliveries, {"q": notification.reference}),
        ("search", "deliveries: phone", deliveries, {"q": phone}),
        ("list", "notifications", notifications, {}),
        ("list", "client LOAD01", notifications, {"client": big_client.pk}),
        ("list", "application", notifications, {"application": application.pk}),
        ("list", "status FAILED", notifications, {"status": "FAILED"}),
        ("list", "status CANCELLED", notifications, {"status": "CANCELLED"}),
        ("list", "medium email", notifications, {"medium": "email"}),
        ("list", "source api", notifications, {"source": "api"}),
        ("list", "batch", notifications, {"batch": notification.batch_id}),
        ("list", "date range", notifications, {"created_at__gte": since, "created_at__lt": until}),
        ("list", "client + FAILED", notifications, {"client": big_client.pk, "status": "FAILED"}),
        ("list", "deliveries", deliveries, {}),
        ("list", "deliveries FAILED", deliveries, {"status": "FAILED"}),
        ("list", "deliveries email", deliveries, {"medium": "email"}),
        ("list", "deliveries client", deliveries, {"client": big_client.pk}),
        ("page", "notification page", f"{notifications}{notification.pk}/change/", {}),
    ]
    staff_paths = [
        ("search", "reference", notifications, {"q": notification.reference}),
        ("search", f"phone {phone}", notifications, {"q": phone}),
        ("search", "another client's phone", notifications, {"q": other_phone}),
        ("list", "notifications", notifications, {}),
        ("list", "status FAILED", notifications, {"status": "FAILED"}),
        ("list", "deliveries", deliveries, {}),
        ("page", "notification page", f"{notifications}{notification.pk}/change/", {}),
    ]
    summary = {}
    for user, role_paths in ((support, paths), (staff, staff_paths)):
        browser = Browser()
        browser.force_login(user)
        print(f"\nas {user.username}: median / worst of {arguments.repeat} ms; rows; slowest query")
        for kind, label, url, params in role_paths:
            times, queries, rows = timed(browser, url, params, arguments.repeat)
            median, worst = statistics.median(times), max(times)
            target = SEARCH_TARGET_MS if kind == "search" else LIST_TARGET_MS
            verdict = "ok" if median < target else f"OVER {target}"
            sql_ms = sum(float(q["time"]) for q in queries) * 1000
            plan = plans_summary(queries)
            print(
                f"  {kind:6} {label:28} {median:7.1f} / {worst:7.1f}  {verdict:8} "
                f"rows {rows if rows is not None else '-':>4}; {len(queries)} queries, "
                f"{sql_ms:.0f} ms of SQL; {plan}",
                flush=True,
            )
            summary[f"{user.username} {label}"] = round(median, 1)
    print("\n" + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
