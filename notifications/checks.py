"""System checks of the bounds on outgoing calls (run by `manage.py check`, and so by
every runserver, migrate and qcluster start): each must end well inside the lease of
the work it does and the timeout of the task that does it."""

from django.conf import settings
from django.core import checks

from notifications.client_callbacks import LEASE as CALLBACK_LEASE


@checks.register(checks.Tags.compatibility)
def outgoing_call_settings_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    problems = []
    lease = settings.DELIVERY_LEASE_SECONDS
    # A send may last its whole deadline, and its outcome is recorded after it: with
    # the delivery's claim run out by then, another worker could send it again.
    for where, deadline in _provider_deadlines():
        if deadline > lease / 2:
            problems.append(
                checks.Error(
                    f"{where} allows a send {deadline:g} s, more than half of "
                    f"DELIVERY_LEASE_SECONDS ({lease} s).",
                    hint="Lower the deadline or raise DELIVERY_LEASE_SECONDS to at least twice it.",
                    id="notifications.E001",
                )
            )
    callback_deadline = settings.CLIENT_CALLBACK_TIMEOUT_SECONDS
    if callback_deadline > CALLBACK_LEASE.total_seconds() / 2:
        problems.append(
            checks.Error(
                f"CLIENT_CALLBACK_TIMEOUT_SECONDS ({callback_deadline:g} s) is more than half "
                f"of a callback's lease ({CALLBACK_LEASE.total_seconds():g} s).",
                hint="A client's server that needs longer should queue the callback and "
                "answer at once.",
                id="notifications.E002",
            )
        )
    # A sweep takes callbacks for CLIENT_CALLBACK_SWEEP_SECONDS, then waits for the
    # last ones: past the task timeout, django-q2 would kill it mid-post.
    sweep = settings.CLIENT_CALLBACK_SWEEP_SECONDS + callback_deadline
    task_timeout = settings.Q_CLUSTER.get("timeout")
    if task_timeout is not None and sweep > task_timeout / 2:
        problems.append(
            checks.Error(
                f"CLIENT_CALLBACK_SWEEP_SECONDS plus CLIENT_CALLBACK_TIMEOUT_SECONDS "
                f"({sweep:g} s) is more than half of Q_CLUSTER's timeout ({task_timeout} s).",
                hint="Keep a callback sweep short: the next one is queued when it stops.",
                id="notifications.E003",
            )
        )
    return problems


def _provider_deadlines() -> list[tuple[str, float]]:
    """(where it is set, seconds) of every total deadline a provider send may have."""
    deadlines = [("PROVIDER_HTTP_TIMEOUT_SECONDS", settings.PROVIDER_HTTP_TIMEOUT_SECONDS)]
    for medium, configs in settings.KOKATTO_CHANNEL_BACKENDS.items():
        for config in configs:
            timeout = config.get("OPTIONS", {}).get("timeout")
            if timeout:
                where = f"KOKATTO_CHANNEL_BACKENDS[{medium!r}] {config['BACKEND']} timeout"
                deadlines.append((where, timeout[1]))
    return deadlines
