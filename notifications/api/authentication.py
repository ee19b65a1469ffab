"""DRF's hooks for /notif: the signature as authentication, a per-client rate limit."""

import hashlib
import time

from django.core.cache import cache
from redis.exceptions import NoScriptError
from rest_framework.authentication import BaseAuthentication
from rest_framework.throttling import BaseThrottle

from clients.signed_requests import AuthenticationError, authenticate_request
from notifications.api.errors import AUTHENTICATE_HEADER, ApiError
from notifications.api.parameters import (
    platform_parameter_errors,
    read_parameters,
    validation_error,
)
from notifications.shared_cache import redis_key, shared_redis

_AUTH_STATUS = {
    "INVALID_SIGNATURE": 401,
    "EXPIRED_TIMESTAMP": 401,
    "CLIENT_INACTIVE": 403,
    "KEY_UNREADABLE": 503,  # the platform's fault (a dropped FIELD_ENCRYPTION_KEY)
}


class SignatureAuthentication(BaseAuthentication):
    """request.user becomes the calling Client, request.auth the SecretKey that signed."""

    def authenticate(self, request):
        parameters = read_parameters(request)
        if errors := platform_parameter_errors(parameters):
            raise validation_error(errors)
        try:
            return authenticate_request(parameters)
        except AuthenticationError as exc:
            raise ApiError(
                code=exc.code, message=exc.message, http_status=_AUTH_STATUS[exc.code]
            ) from None

    def authenticate_header(self, request):
        return AUTHENTICATE_HEADER


class ClientRateThrottle(BaseThrottle):
    """A fixed one-minute window per client, counted in the shared cache (Redis in production).

    A counter per window costs one increment per request (one round trip to Redis:
    window_count), where DRF's SimpleRateThrottle would store and rewrite a list of
    every request's time.
    """

    WINDOW_SECONDS = 60

    def allow_request(self, request, view):
        client = request.user
        now = time.time()
        window_start = int(now // self.WINDOW_SECONDS) * self.WINDOW_SECONDS
        key = f"kokatto:notif-rate:{client.pk}:{window_start}"
        count = window_count(key, seconds=self.WINDOW_SECONDS + 5)
        self._wait = window_start + self.WINDOW_SECONDS - now
        return count <= client.api_rate_per_minute

    def wait(self):
        return self._wait


# INCR, and the lifetime set by the window's first count: one command, one round trip.
_COUNT_IN_WINDOW = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
_COUNT_SHA1 = hashlib.sha1(_COUNT_IN_WINDOW.encode()).hexdigest()  # noqa: S324 (Redis's script id)


def window_count(key: str, *, seconds: int) -> int:
    """Add one to the counter `key` of the default cache, which lives `seconds` from its
    first count; return the new count.

    On Redis it is one round trip (a script: INCR, and EXPIRE on the first count), where
    Django's incr() costs two (EXISTS, then INCRBY) and builds a new client object for
    every call. The script runs by its SHA-1, and is sent whole when Redis does not know
    it (a restart, SCRIPT FLUSH). The counter is stored as Django's RedisCache stores an
    integer, so cache.get() reads it.
    """
    shared = shared_redis()
    if shared is None:
        try:
            return cache.incr(key)
        except ValueError:
            # The window's first request (add: another worker may be creating it too).
            return 1 if cache.add(key, 1, timeout=seconds) else cache.incr(key)
    full_key = redis_key(key)
    try:
        return shared.command("EVALSHA", _COUNT_SHA1, 1, full_key, seconds)
    except NoScriptError:
        return shared.command("EVAL", _COUNT_IN_WINDOW, 1, full_key, seconds)
