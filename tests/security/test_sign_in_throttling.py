"""Guessing passwords at the admin login page: django-axes locks the user name and the address."""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.factories import TEST_PASSWORD, UserFactory
from tests.security.conftest import sign_in, signed_in

ATTACKER = "203.0.113.66"


@pytest.fixture
def victim(db):
    return UserFactory(username="victim", role="operator")


def guess(client, username, *, address=ATTACKER, times=None):
    for _ in range(times or settings.AXES_FAILURE_LIMIT):
        answer = sign_in(client, username, "not-the-password", address=address)
        assert not signed_in(client)
    return answer


def test_failures_from_many_addresses_lock_the_user_name_even_for_the_right_password(
    client, victim
):
    for n in range(settings.AXES_FAILURE_LIMIT):
        guess(client, "victim", address=f"203.0.113.{n + 1}", times=1)

    answer = sign_in(client, "victim", TEST_PASSWORD, address="198.51.100.200")

    assert answer.status_code == 429
    assert "Too many failed sign-ins" in answer.content.decode()
    assert not signed_in(client)


def test_failures_over_many_user_names_lock_the_address(client, victim):
    for n in range(settings.AXES_FAILURE_LIMIT):
        guess(client, f"someone{n}", times=1)

    locked = sign_in(client, "victim", TEST_PASSWORD, address=ATTACKER)
    assert locked.status_code == 429
    assert not signed_in(client)

    elsewhere = sign_in(client, "victim", TEST_PASSWORD, address="198.51.100.7")
    assert elsewhere.status_code == 302
    assert signed_in(client)


def test_fewer_failures_than_the_limit_still_let_the_right_password_in(client, victim):
    guess(client, "victim", times=settings.AXES_FAILURE_LIMIT - 1)

    assert sign_in(client, "victim", TEST_PASSWORD, address=ATTACKER).status_code == 302
    assert signed_in(client)


def test_the_lock_out_page_does_not_tell_whether_the_user_exists(client, victim):
    existing = guess(client, "victim", address="203.0.113.1")
    missing = guess(client, "nobody-by-this-name", address="203.0.113.2")

    assert existing.status_code == missing.status_code == 429
    assert existing.content == missing.content
    assert b"victim" not in existing.content


def test_the_stored_attempts_never_hold_the_guessed_password(client, victim):
    guess(client, "victim", times=1)

    attempt = AccessAttempt.objects.get(username="victim")
    assert "not-the-password" not in attempt.post_data


def test_a_forwarded_for_header_is_ignored_unless_behind_a_trusted_proxy(client, victim):
    for n in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            reverse("admin:login"),
            {"username": f"someone{n}", "password": "guess"},
            REMOTE_ADDR=ATTACKER,
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )

    assert sign_in(client, "victim", address=ATTACKER).status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}


def test_behind_a_trusted_proxy_the_address_it_appended_is_counted(client, victim, settings):
    settings.BEHIND_TRUSTED_PROXY = True
    proxy = "10.0.0.2"
    for n in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            reverse("admin:login"),
            {"username": f"someone{n}", "password": "guess"},
            REMOTE_ADDR=proxy,
            # The client wrote the first entry itself; the proxy appended the last.
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, {ATTACKER}",
        )

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}
    answer = client.post(
        reverse("admin:login"),
        {"username": "victim", "password": TEST_PASSWORD},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="198.51.100.9",
    )
    assert answer.status_code == 302


def test_an_operator_sees_the_lock_out_and_unlocks_the_user(client, victim, operator_user):
    guess(client, "victim")
    assert sign_in(client, "victim").status_code == 429
    operator_client = Client()
    operator_client.force_login(operator_user)

    changelist = reverse("admin:axes_accessattempt_changelist")
    listing = operator_client.get(changelist, {"q": "victim"})
    assert listing.status_code == 200
    assert "Locked Out" in listing.content.decode()
    failures = operator_client.get(reverse("admin:axes_accessfailurelog_changelist"))
    assert "victim" in failures.content.decode()

    attempts = AccessAttempt.objects.filter(username="victim")
    unlocked = operator_client.post(
        changelist,
        {
            "action": "delete_selected",
            "_selected_action": [attempt.pk for attempt in attempts],
            "post": "yes",
        },
    )
    assert unlocked.status_code == 302
    assert not AccessAttempt.objects.filter(username="victim").exists()

    assert sign_in(client, "victim").status_code == 302
    assert signed_in(client)


def test_client_staff_neither_see_nor_clear_lock_outs(client, victim, staff_8002):
    guess(client, "victim")
    client.force_login(staff_8002)

    assert "Access attempts" not in client.get(reverse("admin:index")).content.decode()
    for name in ("accessattempt", "accessfailurelog", "accesslog"):
        assert client.get(reverse(f"admin:axes_{name}_changelist")).status_code == 403
    attempt = AccessAttempt.objects.filter(username="victim").first()
    refused = client.post(
        reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"}
    )

    assert refused.status_code == 403
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
