"""System checks of the delivery and callback settings (run by `manage.py check`, and
so by every runserver, migrate and qcluster start): each outgoing call must end well
inside the lease of the work it does and the timeout of the task that does it."""

from django.conf import settings
from django.core import checks

from clients.outbound import parse_networks
from notifications.client_callbacks import LEASE as CALLBACK_LEASE
from notifications.recipient_digest import DERIVED_KEY_PREFIX


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
                hint="E.g. DELIVERY_LEASE_SECONDS=120 DELIVERY_SEND_TIMEOUT_SECONDS=15.",
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
                "300 + 15 s within 1800 s.",
                id="notifications.E002",
            )
        ]
    return []


@checks.register(checks.Tags.compatibility)
def backend_deadline_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A backend's own total deadline (its OPTIONS' `timeout`) may not exceed the send
    timeout, which is what the dispatcher counts on when it decides a lease still has
    time for a send."""
    send = settings.DELIVERY_SEND_TIMEOUT_SECONDS
    return [
        checks.Error(
            f"{where} allows a send {deadline:g} s, more than "
            f"DELIVERY_SEND_TIMEOUT_SECONDS ({send:g} s).",
            hint="Lower the backend's timeout, or raise DELIVERY_SEND_TIMEOUT_SECONDS "
            "(and DELIVERY_LEASE_SECONDS to more than twice it).",
            id="notifications.E003",
        )
        for where, deadline in _backend_deadlines()
        if deadline > send
    ]


@checks.register(checks.Tags.compatibility)
def callback_settings_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    problems = []
    callback_deadline = settings.CLIENT_CALLBACK_TIMEOUT_SECONDS
    if callback_deadline > CALLBACK_LEASE.total_seconds() / 2:
        problems.append(
            checks.Error(
                f"CLIENT_CALLBACK_TIMEOUT_SECONDS ({callback_deadline:g} s) is more than half "
                f"of a callback's lease ({CALLBACK_LEASE.total_seconds():g} s).",
                hint="A client's server that needs longer should queue the callback and "
                "answer at once.",
                id="notifications.E004",
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
                id="notifications.E005",
            )
        )
    return problems


def _backend_deadlines() -> list[tuple[str, float]]:
    """(where it is set, seconds) of every backend's own total deadline."""
    deadlines = []
    for medium, configs in settings.KOKATTO_CHANNEL_BACKENDS.items():
        for config in configs:
            timeout = config.get("OPTIONS", {}).get("timeout")
            if timeout:
                where = f"KOKATTO_CHANNEL_BACKENDS[{medium!r}] {config['BACKEND']} timeout"
                deadlines.append((where, timeout[1]))
    return deadlines


@checks.register(checks.Tags.security)
def outbound_networks_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """OUTBOUND_ALLOWED_NETWORKS and OUTBOUND_DENIED_NETWORKS must be CIDR lists: a typo
    would otherwise fail every callback at send time."""
    errors = []
    for name in ("OUTBOUND_ALLOWED_NETWORKS", "OUTBOUND_DENIED_NETWORKS"):
        try:
            parse_networks(getattr(settings, name))
        except ValueError as exc:
            errors.append(
                checks.Error(
                    f"{name} holds a value that is not a network: {exc}.",
                    hint='A comma-separated list of CIDRs, e.g. "10.20.0.0/16,fd12::/64".',
                    id="notifications.E006",
                )
            )
    return errors


@checks.register(checks.Tags.security, deploy=True)
def recipient_hash_key_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The purge keeps recipients as HMACs keyed with RECIPIENT_HASH_KEY; derived from
    SECRET_KEY when unset, so rotating SECRET_KEY would make every stored hash unfindable."""
    if settings.DEBUG or settings.RECIPIENT_HASH_KEY != DERIVED_KEY_PREFIX + settings.SECRET_KEY:
        return []
    return [
        checks.Warning(
            "RECIPIENT_HASH_KEY is not set: the purged recipients' hashes are keyed with a key "
            "derived from SECRET_KEY, and rotating SECRET_KEY would make them unfindable.",
            hint="Set RECIPIENT_HASH_KEY to a long random string, the same on every machine, "
            "before the first purge, and never change it.",
            id="notifications.W001",
        )
    ]


@checks.register(checks.Tags.compatibility)
def smtp_pool_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A worker sends email over at most EMAIL_MAX_CONNECTIONS pooled connections: with
    none, every send would wait for one forever."""
    errors = []
    for name in ("EMAIL_MAX_CONNECTIONS", "EMAIL_CONNECTION_MAX_MESSAGES"):
        if getattr(settings, name) < 1:
            errors.append(
                checks.Error(
                    f"{name} is {getattr(settings, name)}: it must be at least 1.",
                    hint="EMAIL_MAX_CONNECTIONS: the SMTP connections a worker process "
                    "keeps open (4 by default), within the SMTP server's limit per client.",
                    id="notifications.E007",
                )
            )
    if settings.EMAIL_CONNECTION_MAX_SECONDS <= 0:
        errors.append(
            checks.Error(
                "EMAIL_CONNECTION_MAX_SECONDS must be more than 0.",
                id="notifications.E007",
            )
        )
    return errors
