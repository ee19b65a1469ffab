"""Channel backends: how a delivery of each medium leaves the platform.

Chosen in settings per medium, like Django's EMAIL_BACKEND:

    KOKATTO_CHANNEL_BACKENDS = {
        "sms": [{"BACKEND": "notifications.backends.twilio.TwilioSmsBackend", "OPTIONS": {...}}],
        "email": [{"BACKEND": "notifications.backends.email.DjangoEmailBackend"}],
    }

Each backend is one small class with `send(delivery) -> SendResult`. Backends
are built once per worker process and reused, so HTTP backends keep their
connections open between messages.
"""

from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from notifications.backends.base import ChannelBackend


def backends_for(medium: str) -> list[ChannelBackend]:
    """The configured backends of `medium`, in failover order (built once per process)."""
    return _build(medium, _settings_key())


def _settings_key() -> str:
    # Rebuilt when tests swap KOKATTO_CHANNEL_BACKENDS.
    return repr(settings.KOKATTO_CHANNEL_BACKENDS)


@lru_cache(maxsize=16)
def _build(medium: str, settings_key: str) -> list[ChannelBackend]:
    configs = settings.KOKATTO_CHANNEL_BACKENDS.get(medium) or [
        {"BACKEND": "notifications.backends.console.ConsoleBackend"}
    ]
    return [import_string(config["BACKEND"])(**config.get("OPTIONS", {})) for config in configs]
