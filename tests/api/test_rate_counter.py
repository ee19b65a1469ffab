"""The per-client rate limit's counter: one count a request, living for its window."""

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from notifications.api.authentication import window_count


@pytest.fixture
def counter_key():
    key = "kokatto:test-window-counter"
    cache.delete(key)
    yield key
    cache.delete(key)


def test_each_request_adds_one_to_the_windows_count(counter_key):
    counts = [window_count(counter_key, seconds=60) for _ in range(3)]

    assert counts == [1, 2, 3]
    assert cache.get(counter_key) == 3


@pytest.mark.skipif(
    not isinstance(caches["default"], RedisCache), reason="the cache is Redis with REDIS_URL"
)
def test_on_redis_the_counter_keeps_the_lifetime_set_by_its_first_count(counter_key):
    window_count(counter_key, seconds=60)
    redis = caches["default"]._cache.get_client(write=True)
    full_key = caches["default"].make_and_validate_key(counter_key)
    redis.expire(full_key, 5)  # as if the window were ending

    window_count(counter_key, seconds=60)

    assert 0 < redis.ttl(full_key) <= 5


@pytest.mark.skipif(
    not isinstance(caches["default"], RedisCache), reason="the cache is Redis with REDIS_URL"
)
def test_the_counter_and_the_dispatch_flag_survive_redis_closing_their_connections(counter_key):
    from notifications.dispatch_queue import DISPATCH_QUEUED_KEY, dispatch_started
    from notifications.shared_cache import redis_key

    redis = caches["default"]._cache.get_client(write=True)
    window_count(counter_key, seconds=60)
    redis.set(redis_key(DISPATCH_QUEUED_KEY), 1)
    # What a Redis restart, failover or idle timeout does to every kept connection.
    redis.client_kill_filter(_type="normal")

    assert window_count(counter_key, seconds=60) == 2
    dispatch_started()
    assert redis.get(redis_key(DISPATCH_QUEUED_KEY)) is None


@pytest.mark.skipif(
    not isinstance(caches["default"], RedisCache), reason="the cache is Redis with REDIS_URL"
)
def test_the_counter_goes_on_after_redis_forgets_its_script(counter_key):
    window_count(counter_key, seconds=60)
    caches["default"]._cache.get_client(write=True).script_flush()  # as after a restart

    assert window_count(counter_key, seconds=60) == 2
    assert window_count(counter_key, seconds=60) == 3
