"""The dashboard's figures on a PostgreSQL database of a few million notifications.

What it measures: the wall time of each function of kokatto_site/dashboard.py (the
median of --repeat calls), cold (cache emptied: what the first page load of a day
runs) and with the six closed days' counts of accepted notifications cached (what a
page load runs once the page's own 30-second cache has expired), for every client
(operators and support) and for one client (client staff), and the query plans'
index use (each query run under EXPLAIN, its scan nodes printed).

How: drops and creates --database, migrates it, creates --clients clients with an
application and a batch each, then fills it with INSERT ... SELECT generate_series:
--notifications notifications spread evenly over --days days (a quarter from batch
files), one delivery each (a third email, the rest SMS) with statuses as a night's
sending leaves them (older ones delivered, failed, undelivered or expired, the last
hour's still pending and due), a few batches in progress and gateway events; then
VACUUM ANALYZE (as autovacuum would, so that counts read the indexes alone).

Target: every figure well under a second at a million notifications a day, so that
a cache miss (once per DASHBOARD_CACHE_SECONDS per set of clients) stays cheap.

    .venv/bin/python bench/dashboard.py --notifications 3000000
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import manage, recreate_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="kokatto_h6")
    parser.add_argument("--notifications", type=int, default=3_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="reuse a database already filled")
    args = parser.parse_args()

    env = {**os.environ, "DATABASE_URL": f"{args.server}/{args.database}", "REDIS_URL": ""}
    if not args.keep:
        recreate_database(args.server, args.database)
        manage(env, "migrate", "--noinput", "--verbosity", "0")
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kokatto_site.settings")
    import django

    django.setup()
    if not args.keep:
        started = time.perf_counter()
        fill(notifications=args.notifications, days=args.days, clients=args.clients)
        print(f"filled in {time.perf_counter() - started:.0f} s")
    measure(repeat=args.repeat)


def fill(*, notifications: int, days: int, clients: int) -> None:
    from django.db import connection

    from batches.models import Batch, BatchStatus, GatewayEvent
    from clients.models import Application, Client

    batch_ids, client_ids, application_ids = [], [], []
    for number in range(clients):
        client = Client.objects.create(client_id=f"{9000 + number}", name=f"Bench {number}")
        application = Application.objects.create(client=client, code="ABC", name="Reminder")
        batch = Batch.objects.create(
            client=client, file_name="bench.7z", inbox_path=f"{client.client_id}/inbox/bench.7z"
        )
        for running in range(2):
            Batch.objects.create(
                client=client,
                file_name=f"running-{running}.7z",
                inbox_path=f"{client.client_id}/inbox/running-{running}.7z",
                status=BatchStatus.PROCESSING,
                bytes_total=1000,
                bytes_done=300 * (running + 1),
            )
        client_ids.append(client.pk)
        application_ids.append(application.pk)
        batch_ids.append(batch.pk)
    GatewayEvent.objects.bulk_create(
        GatewayEvent(
            client_id=client_ids[number % clients],
            username="bench",
            protocol="sftp",
            address="127.0.0.1",
            action=["LOGIN", "UPLOAD", "LOGIN_REFUSED"][number % 3],
            outcome="ok" if number % 5 else "refused",
        )
        for number in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO notifications_notification
                (client_id, application_id, reference, params, source, batch_id, batch_line,
                 status, created_at, updated_at)
            SELECT (%(clients)s::bigint[])[1 + g %% %(count)s],
                   (%(applications)s::bigint[])[1 + g %% %(count)s],
                   'BENCH-' || g, '{}'::jsonb,
                   CASE WHEN g %% 4 = 0 THEN 'batch' ELSE 'api' END,
                   CASE WHEN g %% 4 = 0 THEN (%(batches)s::bigint[])[1 + g %% %(count)s] END,
                   CASE WHEN g %% 4 = 0 THEN g END,
                   'SENT', at, at
            FROM generate_series(1, %(n)s) AS g,
                 LATERAL (SELECT now() - (1 - g::float8 / %(n)s) * %(days)s * interval '1 day'
                          AS at) AS moment
            """,
            {
                "clients": client_ids,
                "applications": application_ids,
                "batches": batch_ids,
                "count": clients,
                "n": notifications,
                "days": days,
            },
        )
        cursor.execute(
            """
            INSERT INTO notifications_delivery
                (notification_id, medium, recipient, subject, body, html_body, status,
                 attempts, claims, next_attempt_at, provider, provider_message_id, last_error,
                 created_at, updated_at, recipient_digest)
            SELECT id, CASE WHEN id % 3 = 0 THEN 'email' ELSE 'sms' END, '+6281234567890',
                   '', '', '',
                   CASE WHEN created_at > now() - interval '1 hour' THEN 'PENDING'
                        WHEN id % 50 = 0 THEN 'FAILED'
                        WHEN id % 50 = 1 THEN 'UNDELIVERED'
                        WHEN id % 100 = 2 THEN 'EXPIRED'
                        WHEN id % 10 = 3 THEN 'SENT'
                        ELSE 'DELIVERED' END,
                   1, 1, created_at, '', '', '', created_at, created_at, ''
            FROM notifications_notification
            """
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE notifications_notification")
        cursor.execute("VACUUM ANALYZE notifications_delivery")


def measure(*, repeat: int) -> None:
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from clients.models import Client
    from kokatto_site import dashboard

    one_client = [Client.objects.order_by("pk").values_list("pk", flat=True).first()]
    now = timezone.now()
    functions = [
        ("accepted_by_day", lambda ids: dashboard.accepted_by_day(client_ids=ids, now=now)),
        (
            "deliveries_by_medium_and_status",
            lambda ids: dashboard.deliveries_by_medium_and_status(client_ids=ids, now=now),
        ),
        ("delivery_queue", lambda ids: dashboard.delivery_queue(client_ids=ids, now=now)),
        (
            "batches_in_progress",
            lambda ids: dashboard.batches_in_progress(client_ids=ids, limit=20),
        ),
        ("gateway_activity", lambda ids: dashboard.gateway_activity(client_ids=ids, now=now)),
        (
            "dashboard_compute",
            lambda ids: dashboard.dashboard_compute(client_ids=ids, internals=ids is None, now=now),
        ),
    ]
    total = connection.cursor()
    total.execute("SELECT count(*) FROM notifications_notification")
    print(f"notifications in the database: {total.fetchone()[0]:,}")
    for scope, ids in (("every client", None), ("one client", one_client)):
        print(f"\n== {scope} ==")
        for name, call in functions:
            call(ids)  # warm the buffers once
            cold, warm = [], []
            for _ in range(repeat):
                cache.clear()
                for times in (cold, warm):
                    started = time.perf_counter()
                    call(ids)
                    times.append(time.perf_counter() - started)
            print(
                f"{name:34} median {1000 * statistics.median(cold):8.1f} ms cold, "
                f"{1000 * statistics.median(warm):8.1f} ms with the closed days cached"
            )
            if name != "dashboard_compute":
                with CaptureQueriesContext(connection) as queries:
                    call(ids)
                for query in queries.captured_queries:
                    print("    " + plan_summary(connection, query["sql"]))


def plan_summary(connection, sql: str) -> str:
    """The scan nodes of the query's plan, one line."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        lines = [row[0] for row in cursor.fetchall()]
    scans = [
        line.strip().lstrip("-> ").split("  (")[0]
        for line in lines
        if "Scan" in line and "Subquery" not in line
    ]
    return "; ".join(scans) or lines[0]


if __name__ == "__main__":
    main()
