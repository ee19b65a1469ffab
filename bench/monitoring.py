"""What watching the platform costs: /readyz when a peer hangs, and the delivery queue's
figures that /metrics reads from PostgreSQL at scrape time.

What it measures, in this process (Django's test client: the middleware and endpoints,
no HTTP server), on PostgreSQL (`--database`, default postgres://postgres@127.0.0.1:5432/
kokatto_monitoring_bench, created, migrated and dropped again unless `--keep-db`):

1. /readyz's answer time, median and worst of `--probes` probes: everything reachable;
   then a Redis broker that accepts connections and never answers; then a second
   database alias on a PostgreSQL that never answers (a loopback socket listening,
   nothing accepting). READYZ_TIMEOUT_SECONDS is the default (0.5 s).
2. The queue's figures (notifications/metrics.py, delivery_queue_state) with `--due`
   PENDING deliveries due (each number of the list inserted in turn, with as many not
   yet due beside them, then VACUUM ANALYZE as autovacuum would): median time of the
   uncached read (count capped at METRICS_QUEUE_COUNT_LIMIT, default 100,000, and the
   oldest due), and the plans' index use (EXPLAIN). A whole /metrics scrape is timed
   uncached and cached (METRICS_QUEUE_CACHE_SECONDS).

Deliveries are inserted with INSERT ... SELECT generate_series (a delivery's
notification is not a foreign key in the database: migration 0013).

    .venv/bin/python bench/monitoring.py --due 10000 100000 1000000
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/kokatto_monitoring_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--due", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    server, name = args.database.rsplit("/", 1)
    psql = ["psql", f"{server}/postgres", "-v", "ON_ERROR_STOP=1", "-q"]
    subprocess.run(  # noqa: S603 (the operator's own database URL, no shell)
        [*psql, "-c", f"DROP DATABASE IF EXISTS {name}", "-c", f"CREATE DATABASE {name}"],
        check=True,
    )
    os.environ.update(DATABASE_URL=args.database, DJANGO_SETTINGS_MODULE="kokatto_site.settings")
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("LOG_LEVEL", "CRITICAL")
    sys.path.insert(0, str(PROJECT_DIR))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
        cwd=PROJECT_DIR,
        check=True,
    )
    try:
        run(args)
    finally:
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            drop = [*psql, "-c", f"DROP DATABASE IF EXISTS {name}"]
            subprocess.run(drop, check=True)  # noqa: S603 (the operator's own database URL)


def run(args) -> None:
    import logging
    import warnings

    import django

    django.setup()
    # Each refused probe is logged as a 503, and a second alias overridden warns.
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", "Overriding setting DATABASES")
    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings

    client = Client()
    print("1. /readyz answer time (READYZ_TIMEOUT_SECONDS =", settings.READYZ_TIMEOUT_SECONDS, "s)")
    with silent_port() as port:
        hung_redis = {"name": "kokatto", "redis": f"redis://127.0.0.1:{port}/0"}
        hung_postgres = {
            **settings.DATABASES,
            "reports": {**settings.DATABASES["default"], "HOST": "127.0.0.1", "PORT": str(port)},
        }
        for label, overrides in [
            ("everything reachable", {}),
            ("Redis broker hung", {"Q_CLUSTER": hung_redis}),
            ("a PostgreSQL alias hung", {"DATABASES": hung_postgres}),
        ]:
            with override_settings(**overrides):
                times, status = [], None
                for _ in range(args.probes):
                    started = time.perf_counter()
                    response = client.get("/readyz")
                    times.append(time.perf_counter() - started)
                    status = response.status_code, response.json().get("failing", [])
            print(
                f"   {label:26} median {statistics.median(times) * 1000:7.1f} ms, "
                f"worst {max(times) * 1000:7.1f} ms, answer {status}"
            )

    print("2. The delivery queue's figures read at scrape time")
    inserted = 0
    for due in sorted(args.due):
        insert_deliveries(start=inserted, due=due - inserted // 2)
        inserted += 2 * (due - inserted // 2)
        queue_figures(client, due=due, total=inserted, probes=args.probes)


def insert_deliveries(*, start: int, due: int) -> None:
    """`due` PENDING deliveries due in the last 10 minutes, and as many due tomorrow."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO notifications_delivery (notification_id, medium, recipient, subject,
              body, html_body, status, attempts, claims, next_attempt_at, provider,
              provider_message_id, last_error, created_at, updated_at, recipient_digest)
            SELECT g, 'sms', '+628123456789', '', '', '', 'PENDING', 0, 0,
              CASE WHEN g %% 2 = 0 THEN now() - (g %% 600) * interval '1 second'
                   ELSE now() + interval '1 day' END,
              '', '', '', now(), now(), ''
            FROM generate_series(%s, %s) g
            """,
            [start + 1, start + 2 * due],
        )
        cursor.execute("VACUUM ANALYZE notifications_delivery")


def queue_figures(client, *, due: int, total: int, probes: int) -> None:
    from django.conf import settings
    from django.db import connection
    from django.test.utils import override_settings
    from django.utils import timezone

    from notifications.metrics import delivery_queue_state
    from notifications.models import Delivery, DeliveryStatus

    limit = settings.METRICS_QUEUE_COUNT_LIMIT
    times = []
    for _ in range(probes):
        started = time.perf_counter()
        depth, _ = delivery_queue_state(now=timezone.now(), count_limit=limit)
        times.append(time.perf_counter() - started)
    queryset = Delivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
    )
    count_plan = queryset.order_by().values("id")[:limit].explain()
    oldest_plan = queryset.order_by("next_attempt_at").values("next_attempt_at")[:1].explain()
    with override_settings(METRICS_QUEUE_CACHE_SECONDS=0):
        uncached = timed(lambda: client.get("/metrics"), probes)
    with override_settings(METRICS_QUEUE_CACHE_SECONDS=15):
        cached = timed(lambda: client.get("/metrics"), probes)
    print(
        f"   {due:>9,} due of {total:>9,} pending: read {statistics.median(times) * 1000:7.1f} ms "
        f"(counted {depth:,}, limit {limit:,}); /metrics uncached "
        f"{uncached * 1000:6.1f} ms, cached {cached * 1000:5.1f} ms"
    )
    print(f"      count plan:  {first_scan(count_plan)}")
    print(f"      oldest plan: {first_scan(oldest_plan)}")
    connection.close()


def timed(call, probes: int) -> float:
    times = []
    for _ in range(probes):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def first_scan(plan: str) -> str:
    for line in plan.splitlines():
        if "Scan" in line:
            return line.strip().lstrip("-> ")
    return plan.splitlines()[0]


class silent_port:
    """A loopback port that accepts connections and never answers."""

    def __enter__(self) -> int:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        return self.listener.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.listener.close()


if __name__ == "__main__":
    main()
