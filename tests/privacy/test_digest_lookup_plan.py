"""A purged recipient is found through the digest's partial index, not by a scan of the
deliveries (PostgreSQL plan)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from notifications.models import Notification
from notifications.recipient_digest import purged_deliveries_to
from notifications.retention import notifications_purge
from tests.privacy.many_rows import notifications_insert

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL plan")


def test_the_lookup_by_recipient_probes_the_digest_index(app_8002):
    notifications_insert(application=app_8002, count=20_000)
    Notification.objects.update(created_at=timezone.now() - timedelta(days=400))
    notifications_purge()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE notifications_delivery")

    found = purged_deliveries_to("0812-1001-0042")  # the filler's +62812 + (10000000 + id)
    plan = found.explain()

    assert "delivery_recipient_digest_idx" in plan, plan
    assert "Seq Scan" not in plan, plan
