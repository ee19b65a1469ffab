"""System checks of the site-wide settings: the task queue every app's tasks run on, and who
may read /metrics (run by `manage.py check`, and so by every runserver, migrate and
qcluster start).

The task queue's ids keep the "batches." prefix they were published with: operators may
silence them by id (SILENCED_SYSTEM_CHECKS).
"""

from django.conf import settings
from django.core import checks

from clients.outbound import parse_networks


@checks.register(checks.Tags.compatibility)
def task_queue_settings_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """django-q2 hands a task to a second worker once it has run `retry` seconds: with
    `retry` at or below `timeout`, a long ingest would run twice at once (its lease
    turns the second away, but the second holds a worker). With `catch_up` on, a
    cluster that was down replays every inbox poll it missed."""
    cluster = settings.Q_CLUSTER
    timeout, retry = cluster.get("timeout"), cluster.get("retry")
    problems = []
    if timeout is not None and retry is not None and retry <= timeout:
        problems.append(
            checks.Error(
                f"Q_CLUSTER's retry ({retry} s) is not above its timeout ({timeout} s).",
                hint="Set Q_RETRY above Q_TIMEOUT, e.g. Q_TIMEOUT=1800 Q_RETRY=1900.",
                id="batches.E001",
            )
        )
    if cluster.get("catch_up", True):
        problems.append(
            checks.Warning(
                "Q_CLUSTER's catch_up is on: a cluster that was down replays every missed "
                "inbox poll.",
                hint='Set "catch_up": False in Q_CLUSTER.',
                id="batches.W001",
            )
        )
    return problems


@checks.register(checks.Tags.security, deploy=True)
def metrics_access_deploy_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Without a token or networks, /metrics trusts loopback: right for a scraper on the
    machine, wrong behind a reverse proxy on it that adds no forwarding header."""
    if settings.DEBUG or settings.METRICS_TOKEN or settings.METRICS_ALLOWED_NETWORKS:
        return []
    return [
        checks.Warning(
            "/metrics is served to any request from loopback, including what a reverse "
            "proxy on this machine relays without an X-Forwarded-For header.",
            hint="Set METRICS_TOKEN (and/or METRICS_ALLOWED_NETWORKS).",
            id="kokatto_site.W001",
        )
    ]


@checks.register(checks.Tags.security)
def metrics_settings_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """/metrics refuses every scraper when METRICS_ALLOWED_NETWORKS holds a value that is
    not a network: said at start-up rather than at the first scrape."""
    try:
        parse_networks(settings.METRICS_ALLOWED_NETWORKS)
    except ValueError as exc:
        return [
            checks.Error(
                f"METRICS_ALLOWED_NETWORKS holds a value that is not a network: {exc}.",
                hint='A comma-separated list of CIDRs, e.g. "10.20.0.0/24,fd12::/64".',
                id="kokatto_site.E001",
            )
        ]
    return []
