"""A short-lived, bounded, per-process cache of client configuration read on every API request.

Each /notif request needs the client's keys and its application's fields and
media. They change rarely, so each worker process keeps them for
settings.API_CONFIG_CACHE_SECONDS (default 10 s): a deactivated key or an
edited field schema takes effect within that time on every worker. Zero (or
API_CONFIG_CACHE_MAX_ENTRIES zero) turns the cache off.

The cache is filled from what requests name (a clientId, an appType) before the
signature is checked, so what it holds must not be for a stranger to choose: a
load that finds nothing (None or an empty collection: an unknown client, an
unknown appType) is not kept, and at most settings.API_CONFIG_CACHE_MAX_ENTRIES
entries are, the least recently used leaving first.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import TypeVar

from django.conf import settings

T = TypeVar("T")
_lock = threading.Lock()  # runserver is threaded
# key -> (the monotonic time it expires, value); the least recently used first. A plain
# ordered dict: cachetools' TTLCache took about ten Python calls a hit, on the API's
# hot path twice a request.
_entries: OrderedDict = OrderedDict()
_limits = (0, 0)  # (API_CONFIG_CACHE_SECONDS, API_CONFIG_CACHE_MAX_ENTRIES) it was filled under


def cached(key: tuple, load: Callable[[], T]) -> T:
    """The value cached under `key`, or `load()`'s result, kept for the configured time.

    A result that is None or empty is returned but not kept.
    """
    seconds, max_entries = settings.API_CONFIG_CACHE_SECONDS, settings.API_CONFIG_CACHE_MAX_ENTRIES
    if seconds <= 0 or max_entries <= 0:
        return load()
    now = time.monotonic()
    with _lock:
        _clear_if_resized(seconds, max_entries)
        entry = _entries.get(key)
        if entry is not None and entry[0] > now:
            _entries.move_to_end(key)
            return entry[1]
    value = load()
    if not _is_nothing(value):
        with _lock:
            _entries[key] = (now + seconds, value)
            _entries.move_to_end(key)
            while len(_entries) > max_entries:
                _entries.popitem(last=False)
    return value


def clear() -> None:
    with _lock:
        _entries.clear()


def _clear_if_resized(seconds: int, max_entries: int) -> None:
    """Start afresh when the settings changed (tests change them)."""
    global _limits
    if _limits != (seconds, max_entries):
        _entries.clear()
        _limits = (seconds, max_entries)


def _is_nothing(value: object) -> bool:
    return value is None or (isinstance(value, Collection) and len(value) == 0)
