"""Each worker keeps a client's keys and schema briefly: fewer queries per request."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from clients import config_cache
from clients.keys import secret_key_deactivate
from clients.models import SecretKey
from tests.api.conftest import demo_fields


def test_a_warm_create_runs_only_the_writes(api, settings):
    settings.API_CONFIG_CACHE_SECONDS = 10
    api.create(**demo_fields(reference="WARM-UP"))

    with CaptureQueriesContext(connection) as queries:
        answer = api.create(**demo_fields(reference="MEASURED"))

    assert answer.status_code == 201
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    # PostgreSQL: the notification and its deliveries in one statement (WITH … INSERT …);
    # SQLite: an INSERT for the notification, one for its deliveries.
    expected = ["WITH"] if connection.vendor == "postgresql" else ["INSERT", "INSERT"]
    assert [s for s in statements if s not in ("BEGIN", "SAVEPOINT", "RELEASE")] == expected


def test_a_deactivated_key_stops_signing_when_the_cache_expires(api, client_8002, settings):
    settings.API_CONFIG_CACHE_SECONDS = 10
    status = {"operation": "status", "clientNotifRefId": "R"}
    assert api.call(api.signed(**status)).code == "NOT_FOUND"

    secret_key_deactivate(key=SecretKey.objects.get(client=client_8002))
    still_cached = api.call(api.signed(**status))
    config_cache.clear()  # what the passing of API_CONFIG_CACHE_SECONDS does
    expired = api.call(api.signed(**status))

    assert still_cached.code == "NOT_FOUND"
    assert expired.code == "INVALID_SIGNATURE"


def test_an_entry_is_loaded_again_once_its_seconds_have_passed(settings, monkeypatch):
    settings.API_CONFIG_CACHE_SECONDS = 10
    clock = [1000.0]
    monkeypatch.setattr(config_cache.time, "monotonic", lambda: clock[0])
    loads = []

    def load():
        loads.append(clock[0])
        return ["value"]

    config_cache.cached(("t", 1), load)
    clock[0] += 9.9
    config_cache.cached(("t", 1), load)
    clock[0] += 0.2
    config_cache.cached(("t", 1), load)

    assert loads == [1000.0, 1010.1]
