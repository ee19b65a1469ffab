"""/healthz: the process answers, touching nothing else; for anyone, over plain http."""

import pytest


def test_it_answers_a_tiny_json_without_the_database(client):
    # Not marked django_db: any database access would fail this test.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_a_probe_by_address_over_plain_http_is_answered_while_pages_are_redirected(
    client, settings
):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["notif.example.co.id"]

    # A load balancer inside the network probes the machine's address over http.
    probe = client.get("/healthz", HTTP_HOST="10.20.0.7:8000")
    page = client.get("/admin/", HTTP_HOST="notif.example.co.id")

    assert probe.status_code == 200
    assert page.status_code == 301
    assert page["Location"].startswith("https://")


@pytest.mark.django_db
def test_it_needs_no_sign_in_even_with_two_factor_required(client, two_factor_required):
    assert client.get("/healthz").status_code == 200
    assert client.get("/admin/").status_code == 302  # a page sends to the sign-in


def test_only_get_and_head_are_answered(client):
    response = client.post("/healthz")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
