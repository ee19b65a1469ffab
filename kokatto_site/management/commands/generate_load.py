import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from kokatto_site.load_generation import load_generate


class Command(BaseCommand):
    help = (
        "Fill PostgreSQL with N realistic notifications (six load clients, SMS and email "
        "deliveries, status events, batch and API sources, six months of dates) using COPY, "
        "then ANALYZE. For benchmarks: refuses SQLite, and DEBUG off unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--notifications", type=int, required=True)
        parser.add_argument("--seed", type=int, default=18, help="Random seed (default 18).")
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")

    def handle(self, *args, notifications, seed, force, **options):
        if connection.vendor != "postgresql":
            raise CommandError("generate_load needs PostgreSQL (it uses COPY); set DATABASE_URL.")
        if not settings.DEBUG and not force:
            raise CommandError(
                "generate_load locks and fills the notification tables; run it with DEBUG on "
                "or --force."
            )
        if notifications < 1:
            raise CommandError("--notifications must be at least 1.")
        started = time.perf_counter()
        result = load_generate(notifications=notifications, seed=seed, log=self.stdout.write)
        self.stdout.write(
            f"Loaded {result.notifications:,} notifications, {result.deliveries:,} deliveries, "
            f"{result.events:,} events, {result.batches:,} batches "
            f"in {time.perf_counter() - started:.0f} s."
        )
