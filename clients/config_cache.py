"""A short-lived, per-process cache of client configuration read on every API request.

Each /notif request needs the client's keys and its application's fields and
media. They change rarely, so each worker process keeps them for
settings.API_CONFIG_CACHE_SECONDS (default 10 s): a deactivated key or an
edited field schema takes effect within that time on every worker. Zero turns
the cache off.
"""

import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

T = TypeVar("T")
_entries: dict[tuple, tuple[float, object]] = {}


def cached(key: tuple, load: Callable[[], T]) -> T:
    """The value cached under `key`, or `load()`'s result, kept for the configured time."""
    seconds = settings.API_CONFIG_CACHE_SECONDS
    if seconds <= 0:
        return load()
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and entry[0] > now:
        return entry[1]
    value = load()
    _entries[key] = (now + seconds, value)
    return value


def clear() -> None:
    _entries.clear()
