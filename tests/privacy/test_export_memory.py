"""The export streams: 200,000 rows go out while the process holds a small part of them,
the same part as for an export ten times smaller."""

import tracemalloc

from notifications.models import Notification
from tests.privacy.many_rows import notifications_insert

EXPORT = "/admin/notifications/notification/export/"


def export_measured(browser, query: str) -> tuple[int, int, int]:
    """(bytes, lines, peak bytes allocated meanwhile) of one export, consumed as streamed."""
    tracemalloc.start()
    try:
        response = browser.get(EXPORT + query)
        exported = lines = 0
        for chunk in response.streaming_content:
            exported += len(chunk)
            lines += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return exported, lines, peak


def test_exporting_200000_rows_holds_no_more_than_exporting_20000(
    operator_client, app_8002, app_8003
):
    notifications_insert(application=app_8002, count=180_000)
    notifications_insert(application=app_8003, count=20_000)
    assert Notification.objects.count() == 200_000
    export_measured(operator_client, "?status__exact=FAILED")  # the first page's imports

    small, small_lines, small_peak = export_measured(
        operator_client, f"?client={app_8003.client_id}"
    )
    whole, whole_lines, whole_peak = export_measured(operator_client, "")

    assert (small_lines, whole_lines) == (20_001, 200_001)
    print(
        f"20,000 rows: {small / 2**20:.1f} MiB, peak {small_peak / 2**20:.1f} MiB; "
        f"200,000 rows: {whole / 2**20:.1f} MiB, peak {whole_peak / 2**20:.1f} MiB"
    )
    # About 20 MiB of CSV; the export holds a chunk of NOTIFICATION_EXPORT_CHUNK_ROWS (2,000)
    # rows at a time, whatever the total.
    assert whole > 15 * 2**20
    assert whole_peak < 1.5 * small_peak
    assert whole_peak < whole / 4
