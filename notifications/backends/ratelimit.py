"""A provider's rate limit (messages per second), shared by every worker through the cache.

Providers throttle accounts (429) past an agreed rate. Each worker counts its
sends in a per-second counter in the shared cache (Redis in production), and
waits for the next second once the provider's share is used up.
"""

import time

from django.core.cache import cache


class ProviderRateLimit:
    def __init__(self, provider: str, per_second: float):
        self.provider = provider
        self.per_second = per_second

    def acquire(self) -> None:
        """Return once this send fits in the provider's rate (at once when unlimited)."""
        if not self.per_second:
            return
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
                return
            time.sleep(second + 1 - now)
