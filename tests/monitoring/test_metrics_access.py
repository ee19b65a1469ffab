"""Who may read /metrics: METRICS_TOKEN (a bearer token) and/or METRICS_ALLOWED_NETWORKS;
with neither, DEBUG or a loopback address only."""

import pytest

from kokatto_site.checks import metrics_access_deploy_check, metrics_settings_check

TOKEN = "a-long-random-scrape-token-0123456789"
SCRAPER = "10.20.0.9"


def get(client, *, address="127.0.0.1", token=None, **headers):
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.get("/metrics", REMOTE_ADDR=address, **headers)


def test_without_the_token_it_is_401_and_asks_for_a_bearer_token(client, settings):
    settings.METRICS_TOKEN = TOKEN

    for response in (
        get(client),
        get(client, token="wrong-token"),
        get(client, token=TOKEN[:-1]),
        get(client, HTTP_AUTHORIZATION=f"Basic {TOKEN}"),
    ):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert b"kokatto_" not in response.content


@pytest.mark.django_db
def test_with_the_token_it_answers_from_any_address(client, settings):
    settings.METRICS_TOKEN = TOKEN

    response = get(client, address=SCRAPER, token=TOKEN)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"kokatto_delivery_queue_due" in response.content


@pytest.mark.django_db
def test_allowed_networks_let_their_scrapers_in_and_no_one_else(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/24", "fd12::/64"]

    assert get(client, address=SCRAPER).status_code == 200
    assert get(client, address="fd12::9").status_code == 200
    assert get(client, address="10.20.1.9").status_code == 403
    # Loopback is no exception once networks are named.
    assert get(client, address="127.0.0.1").status_code == 403


def test_a_load_balancer_in_the_allowed_networks_does_not_let_its_clients_in(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/24"]

    relayed = get(client, address=SCRAPER, HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert relayed.status_code == 403


def test_production_without_a_token_or_networks_is_warned_about(settings):
    settings.DEBUG, settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = False, "", []
    assert [w.id for w in metrics_access_deploy_check()] == ["kokatto_site.W001"]
    settings.METRICS_TOKEN = TOKEN
    assert metrics_access_deploy_check() == []


@pytest.mark.django_db
def test_with_both_set_both_are_required(client, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/24"]

    assert get(client, address=SCRAPER, token=TOKEN).status_code == 200
    assert get(client, address=SCRAPER).status_code == 401
    assert get(client, address="192.0.2.7", token=TOKEN).status_code == 403


@pytest.mark.django_db
def test_with_neither_set_only_loopback_reads_them(client, settings):
    assert get(client, address="127.0.0.1").status_code == 200
    assert get(client, address="::1").status_code == 200
    assert get(client, address=SCRAPER).status_code == 403


@pytest.mark.django_db
def test_a_forwarded_for_header_does_not_make_a_request_local(client, settings):
    # Behind a local proxy every request comes from loopback: with BEHIND_TRUSTED_PROXY
    # the address is the one the proxy saw, and a forged entry to its left counts for nothing.
    settings.BEHIND_TRUSTED_PROXY = True

    response = get(client, HTTP_X_FORWARDED_FOR=f"127.0.0.1, {SCRAPER}")

    assert response.status_code == 403


def test_a_request_relayed_by_a_proxy_on_this_machine_is_not_local(client):
    # nginx on the same machine connects from loopback for every client on the internet.
    for header in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"):
        response = get(client, address="127.0.0.1", **{header: "203.0.113.9"})

        assert response.status_code == 403, header


@pytest.mark.django_db
def test_with_debug_on_anyone_reads_them(client, settings):
    settings.DEBUG = True

    assert get(client, address=SCRAPER).status_code == 200


def test_a_refusal_needs_no_database_and_no_sign_in(client, settings):
    # Not marked django_db: refusing touches nothing.
    settings.METRICS_TOKEN = TOKEN

    assert get(client, address=SCRAPER).status_code == 401


def test_a_network_that_cannot_be_read_is_refused_at_start_up(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/24", "10.20.0.0/33"]

    errors = metrics_settings_check()

    assert [error.id for error in errors] == ["kokatto_site.E001"]
    assert "10.20.0.0/33" in errors[0].msg
