"""Liveness and readiness, for load balancers and orchestrators (/healthz, /readyz).

/healthz says the process answers and touches nothing else. /readyz checks what a
request needs: each database, django-q2's broker (Redis, or the ORM's table), the cache
and the batch storage, side by side, each on a connection of its own with short
timeouts, and answers by READYZ_TIMEOUT_SECONDS whatever hangs: a check still running
then is reported as a timeout and left to end on its own timeouts. The answer names
each check with its time; a failure says only `unreachable` or `timeout` (the detail,
which may name an internal host, goes to the log).
"""

import copy
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connections
from django.db.utils import load_backend
from django.utils.module_loading import import_string

from batches.file_storage import batch_storage

logger = logging.getLogger(__name__)

CACHE_PROBE_KEY = "kokatto:readyz"
# The checks being run in this process, by name and the settings checked: see readiness().
_running: dict[tuple[str, str], Future] = {}
_running_lock = threading.Lock()
# The last answer in this process, by the settings checked: see readiness().
_last_answer: dict[tuple[str, ...], tuple[float, bool, dict]] = {}
# django-q2's ORM broker keeps its queue in this table (django_q.models.OrmQ).
ORM_QUEUE_PROBE = "SELECT 1 FROM django_q_ormq LIMIT 1"


def liveness() -> dict:
    """What /healthz answers: the process is up. No database, no network."""
    return {"status": "ok"}


def readiness() -> tuple[bool, dict]:
    """Run every readiness check side by side within READYZ_TIMEOUT_SECONDS.

    Returns whether all passed, and the answer: each check's status (ok or error),
    its seconds and, on error, `unreachable` or `timeout`.
    """
    deadline = settings.READYZ_TIMEOUT_SECONDS
    checks = readiness_checks(deadline)
    configured = tuple(setting for setting, _check in checks.values())
    with _running_lock:
        # Answered again for READYZ_CACHE_SECONDS: a flood of probes (anyone may send them)
        # opens no more connections to the peers than one probe a second does.
        at, ready, answer = _last_answer.get(configured, (-math.inf, False, {}))
        if time.monotonic() - at < settings.READYZ_CACHE_SECONDS:
            return ready, copy.deepcopy(answer)
    ready, answer = _readiness_now(checks, deadline)
    with _running_lock:
        _last_answer.clear()
        _last_answer[configured] = (time.monotonic(), ready, answer)
    return ready, copy.deepcopy(answer)


def _readiness_now(checks, deadline: float) -> tuple[bool, dict]:
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="kokatto-readyz")
    with _running_lock:
        # A check still hung from an earlier probe is not started again: it is that
        # probe's answer we wait for, so a peer that hangs for ever holds one thread.
        for name, (configured, check) in checks.items():
            key = (name, configured)
            if key not in _running or _running[key].done():
                _running[key] = pool.submit(_timed, check)
        futures = {name: _running[(name, configured)] for name, (configured, _) in checks.items()}
    wait(futures.values(), timeout=max(0.0, deadline - (time.monotonic() - started)))
    # A check past the deadline keeps its thread until its own timeouts end it.
    pool.shutdown(wait=False)
    results = {}
    for name, future in futures.items():
        if future.done():
            results[name] = _result(name, *future.result())
        else:
            logger.warning("Readiness check %s: no answer within %s s", name, deadline)
            elapsed = round(time.monotonic() - started, 4)
            results[name] = {"status": "error", "error": "timeout", "seconds": elapsed}
    failing = [name for name, result in results.items() if result["status"] != "ok"]
    answer = {"status": "error" if failing else "ok", "checks": results}
    if failing:
        answer["failing"] = failing
    return not failing, answer


def readiness_checks(timeout: float) -> dict[str, tuple[str, Callable[[], None]]]:
    """The checks by name, each with the settings it checks (as text) and a function that
    raises when what it checks is not reachable."""
    checks = {
        _database_name(alias): (
            repr(config),
            lambda alias=alias: _database_check(alias, timeout),
        )
        for alias, config in settings.DATABASES.items()
    }
    checks["broker"] = (repr(settings.Q_CLUSTER), lambda: _broker_check(timeout))
    checks["cache"] = (repr(settings.CACHES["default"]), lambda: _cache_check(timeout))
    checks["storage"] = (repr(settings.STORAGES["batches"]), _storage_check)
    return checks


def _database_name(alias: str) -> str:
    return "database" if alias == "default" else f"database:{alias}"


def _timed(check: Callable[[], None]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        check()
    except Exception as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def _result(name: str, seconds: float, error: BaseException | None) -> dict:
    if error is None:
        return {"status": "ok", "seconds": round(seconds, 4)}
    logger.warning("Readiness check %s failed: %s: %s", name, type(error).__name__, error)
    kind = "timeout" if isinstance(error, TimeoutError | redis.TimeoutError) else "unreachable"
    return {"status": "error", "error": kind, "seconds": round(seconds, 4)}


def _database_check(alias: str, timeout: float) -> None:
    """SELECT 1 on a connection of its own (never a request's), closed afterwards."""
    _on_fresh_connection(alias, timeout, "SELECT 1")


def _on_fresh_connection(alias: str, timeout: float, sql: str) -> None:
    # configure_settings fills in the defaults (it wants the dict under "default").
    settings_dict = connections.configure_settings(
        {"default": copy.deepcopy(settings.DATABASES[alias])}
    )["default"]
    backend = load_backend(settings_dict["ENGINE"])
    wrapper = backend.DatabaseWrapper(settings_dict, alias)
    if wrapper.vendor == "postgresql":
        options = settings_dict["OPTIONS"]
        # libpq waits at least 2 s to connect; the statement gets the check's own time.
        options["connect_timeout"] = max(2, math.ceil(timeout))
        statement_ms = max(1, int(timeout * 1000))
        options["options"] = f"{options.get('options', '')} -c statement_timeout={statement_ms}"
    try:
        with wrapper.cursor() as cursor:
            cursor.execute(sql)
            cursor.fetchone()
    finally:
        wrapper.close()


def _broker_check(timeout: float) -> None:
    """django-q2's broker as the settings name it: a Redis PING, or the ORM's queue table."""
    cluster = settings.Q_CLUSTER
    if cluster.get("redis"):
        _redis_client(cluster["redis"], timeout).ping()
    else:
        alias = cluster.get("orm", "default")
        _on_fresh_connection(alias, timeout, ORM_QUEUE_PROBE)


@lru_cache(maxsize=8)
def _redis_client(url: str, timeout: float) -> redis.Redis:
    """One client a URL per process (its pool is reused), with short socket timeouts."""
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def _cache_check(timeout: float) -> None:
    """Write a value to the default cache and read it back."""
    cache = _probe_cache(repr(settings.CACHES["default"]), timeout)
    token = secrets.token_hex(8)
    cache.set(CACHE_PROBE_KEY, token, timeout=30)
    if cache.get(CACHE_PROBE_KEY) != token:
        raise ConnectionError("the cache did not return what was written")


@lru_cache(maxsize=8)
def _probe_cache(configured: str, timeout: float):
    """The default cache; for Redis, a client of its own with short socket timeouts
    (kept per process, keyed by the settings, so its connection pool is reused)."""
    params = copy.deepcopy(settings.CACHES["default"])
    backend = import_string(params.pop("BACKEND"))
    if not issubclass(backend, RedisCache):
        return caches["default"]
    timeouts = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    params["OPTIONS"] = {**params.get("OPTIONS", {}), **timeouts}
    return backend(params.pop("LOCATION"), params)


def _storage_check() -> None:
    """List the batch storage's top folder: a missing or unreadable root (a missing bucket)
    fails. Remote storages bring their own timeouts; the deadline bounds the answer."""
    batch_storage().listdir("")
