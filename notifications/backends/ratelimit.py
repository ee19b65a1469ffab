"""A provider's rate limit (messages per second), shared by every worker through the cache.

Providers throttle accounts (429) past an agreed rate. Each worker counts its
sends in a per-second counter in the shared cache (Redis in production), and
waits for the next second once the provider's share is used up.
"""

import math
import time

from django.core.cache import cache


class ProviderRateLimit:
    def __init__(self, provider: str, per_second: float):
        self.provider = provider
        self.per_second = per_second

    def acquire(self, *, until: float = math.inf) -> bool:
        """Wait until this send fits in the provider's rate (at once when unlimited).

        Returns False, without a slot, when none comes before `until` (a
        time.monotonic() value): a send must end within its deadline, waits included.
        """
        if not self.per_second:
            return True
        while True:
            now = time.time()
            second = int(now)
            key = f"kokatto:provider-rate:{self.provider}:{second}"
            cache.add(key, 0, timeout=5)
            try:
                count = cache.incr(key)
            except ValueError:  # the key expired between add and incr
                continue
            if count <= self.per_second:
                return True
            wait = second + 1 - now
            if time.monotonic() + wait > until:
                return False
            time.sleep(wait)


def rate_limited(seconds: float) -> str:
    """The error of a send that found no slot of the provider's rate within `seconds`."""
    return f"RateLimited: no slot of the provider's agreed rate within {seconds:g} s"
