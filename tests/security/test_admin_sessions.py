"""An admin session ends a working day after sign-in, and when the browser closes."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from tests.factories import TEST_PASSWORD

WORKING_DAY = timedelta(hours=9)


@pytest.fixture
def signed_in(client, operator_user):
    """The operator signed in through the admin's login form: the sign-in's answer."""
    response = client.post(
        reverse("admin:login"), {"username": "operator", "password": TEST_PASSWORD}
    )
    assert response.status_code == 302, "the sign-in failed"
    return response


def test_the_session_cookie_lasts_only_until_the_browser_closes(signed_in):
    cookie = signed_in.cookies["sessionid"]

    # No expiry: the browser forgets it when it closes.
    assert cookie["max-age"] == ""
    assert cookie["expires"] == ""
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    assert cookie["samesite"] == "Lax"


def test_a_session_cookie_replayed_after_a_working_day_is_refused(client, signed_in):
    session = Session.objects.get()
    assert timezone.now() + WORKING_DAY - session.expire_date < timedelta(minutes=1)
    assert client.get(reverse("admin:index")).status_code == 200

    # A working day later (the session's end moved instead of the clock): signed out.
    session.expire_date -= WORKING_DAY
    session.save()
    response = client.get(reverse("admin:index"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
