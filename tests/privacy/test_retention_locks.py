"""The purge takes no long locks and waits for none: a notification another transaction
holds (a receipt being recorded, say) is skipped and purged by the next run (PostgreSQL)."""

import threading

import pytest
from django.db import connection, transaction

from notifications.models import Notification
from notifications.retention import notifications_purge
from tests.privacy.old_rows import finished


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_row_held_by_another_transaction_is_left_for_the_next_run(app_8002):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks (its writers take turns)")
    held = finished(app_8002, "REF-HELD", days=500)
    free = finished(app_8002, "REF-FREE", days=400)
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Notification.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        first = notifications_purge()
    finally:
        release.set()
        holder.join()
    second = notifications_purge()

    assert (first["notifications"], second["notifications"]) == (1, 1)
    held.refresh_from_db()
    free.refresh_from_db()
    assert held.purged_at > free.purged_at
