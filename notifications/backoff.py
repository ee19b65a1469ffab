"""When to try again: the one backoff of deliveries and client callbacks."""

import random
from datetime import timedelta

from django.conf import settings


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with ±20% jitter, so retries of many deliveries spread out."""
    base = settings.DELIVERY_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    seconds = min(base, settings.DELIVERY_RETRY_MAX_SECONDS) * random.uniform(0.8, 1.2)  # noqa: S311
    return timedelta(seconds=seconds)
