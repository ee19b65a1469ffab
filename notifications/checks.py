"""System checks of the delivery settings (run by `manage.py check`, and so by every
runserver, migrate and qcluster start)."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.compatibility)
def delivery_lease_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A worker sends a delivery only while its lease runs for longer than a send may
    take, and renews the lease when half of it is gone: a lease of twice the send
    timeout or less would leave no time in which a delivery may be sent."""
    lease, send = settings.DELIVERY_LEASE_SECONDS, settings.DELIVERY_SEND_TIMEOUT_SECONDS
    if send <= 0 or lease <= 2 * send:
        return [
            checks.Error(
                f"DELIVERY_LEASE_SECONDS ({lease} s) is not more than twice "
                f"DELIVERY_SEND_TIMEOUT_SECONDS ({send:g} s), or the send timeout is not positive.",
                hint="E.g. DELIVERY_LEASE_SECONDS=120 DELIVERY_SEND_TIMEOUT_SECONDS=30.",
                id="notifications.E001",
            )
        ]
    return []


@checks.register(checks.Tags.compatibility)
def dispatch_task_time_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """django-q2 kills a task at its timeout: a dispatch task killed between a send and
    its record would have that delivery sent again. A task stops starting sends after
    DELIVERY_CHUNK_SECONDS, so that plus a send must end well within the timeout."""
    timeout = settings.Q_CLUSTER.get("timeout")
    needs = settings.DELIVERY_CHUNK_SECONDS + settings.DELIVERY_SEND_TIMEOUT_SECONDS
    if timeout is not None and needs * 1.5 > timeout:
        return [
            checks.Error(
                f"DELIVERY_CHUNK_SECONDS plus DELIVERY_SEND_TIMEOUT_SECONDS ({needs:g} s) is "
                f"not well within Q_TIMEOUT ({timeout} s).",
                hint="Keep Q_TIMEOUT at least 1.5 times their sum, e.g. the defaults: "
                "300 + 30 s within 1800 s.",
                id="notifications.E002",
            )
        ]
    return []
