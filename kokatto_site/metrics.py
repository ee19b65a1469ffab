"""Prometheus metrics at /metrics: who may read them, and what they hold.

What: django-prometheus's request and database metrics, the platform's own counters
(notifications/metrics.py, batches/metrics.py) and, read when scraped, the delivery
queue's depth and the age of its oldest due delivery.

Several processes (gunicorn workers, the django-q2 cluster, the SFTP gateway): with
PROMETHEUS_MULTIPROC_DIR set in their environment each process writes its values to
files there and the scrape sums them (prometheus_client's multiprocess collector).

Who: METRICS_TOKEN (a bearer token) and/or METRICS_ALLOWED_NETWORKS (CIDRs of the
scrapers); with both set, both are required. With neither, only DEBUG or a loopback
address (not relayed by a proxy) may read them.
"""

import ipaddress
import logging
import os
import secrets
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from clients.client_address import client_address
from clients.outbound import parse_networks
from notifications.metrics import delivery_queue_state

logger = logging.getLogger(__name__)

QUEUE_CACHE_KEY = "kokatto:metrics:delivery-queue"
# Headers a reverse proxy adds: a request carrying one did not come from this machine.
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


class Refusal(Exception):
    """The request may not read the metrics: `status` is 401 (token) or 403 (address)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def metrics_access_check(request) -> None:
    """Raise Refusal unless the request may read /metrics."""
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS
    address = _address(request)
    # A request a proxy relayed came from wherever the proxy's clients are, not from the
    # proxy's address: scrapers connect directly.
    if networks and (_relayed(request) or not _within(address, parse_networks(networks))):
        raise Refusal(403, "Metrics are not served to this address.")
    if token:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            value.strip().encode(), token.encode()
        ):
            raise Refusal(401, "A bearer token is required.")
    loopback = address is not None and address.is_loopback and not _relayed(request)
    if not token and not networks and not settings.DEBUG and not loopback:
        raise Refusal(403, "Metrics are served to loopback only: set METRICS_TOKEN.")


def _relayed(request) -> bool:
    """Whether a proxy we were not told to trust relayed the request: a reverse proxy on
    this machine connects from loopback for every client, wherever they are."""
    if settings.BEHIND_TRUSTED_PROXY:
        return False
    return any(name in request.headers for name in PROXY_HEADERS)


def _within(address, networks) -> bool:
    return address is not None and any(
        address.version == network.version and address in network for network in networks
    )


def _address(request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(client_address(request) or "")
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def metrics_exposition() -> bytes:
    """The metrics in Prometheus's text format: this process's (or, in multiprocess mode,
    every process's, summed), then the figures read now."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
    else:
        registry = REGISTRY
    scraped = CollectorRegistry()
    scraped.register(DeliveryQueueCollector())
    return generate_latest(registry) + generate_latest(scraped)


class DeliveryQueueCollector:
    """The delivery queue, read from the database when scraped, at bounded cost: from the
    dispatcher's index, counted up to METRICS_QUEUE_COUNT_LIMIT, and kept in the shared
    cache for METRICS_QUEUE_CACHE_SECONDS so that several scrapers and workers read it
    once in that time."""

    def collect(self):
        try:
            depth, oldest = _queue_state()
        except DatabaseError:
            # The rest of the scrape still answers; /readyz names the database.
            logger.exception("Metrics: the delivery queue could not be read")
            return
        yield GaugeMetricFamily(
            "kokatto_delivery_queue_due",
            "Pending deliveries due now (counted up to METRICS_QUEUE_COUNT_LIMIT).",
            value=depth,
        )
        age = 0.0 if oldest is None else max(0.0, timezone.now().timestamp() - oldest)
        yield GaugeMetricFamily(
            "kokatto_delivery_queue_oldest_due_age_seconds",
            "How long the oldest pending due delivery has been due (0 when none is).",
            value=age,
        )


def _queue_state() -> tuple[int, float | None]:
    """(due count, when the oldest was due as a Unix time), cached."""
    seconds = settings.METRICS_QUEUE_CACHE_SECONDS
    state = _cache_call(cache.get, QUEUE_CACHE_KEY) if seconds else None
    if state is None:
        depth, oldest = delivery_queue_state(
            now=timezone.now(), count_limit=settings.METRICS_QUEUE_COUNT_LIMIT
        )
        state = (depth, _timestamp(oldest))
        if seconds:
            _cache_call(cache.set, QUEUE_CACHE_KEY, state, seconds)
    return state


def _cache_call(method, *args):
    """A cache that is down (Redis) costs the scrape its cache, not its answer."""
    try:
        return method(*args)
    except Exception:
        logger.warning("Metrics: the cache is unreachable; reading the queue directly")
        return None


def _timestamp(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()
