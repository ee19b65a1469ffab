"""Signing in to the control panel as a browser does: the admin login page, then the codes."""

import time

import pytest
from django.urls import reverse
from django_otp.oath import TOTP

from kokatto_site.sign_in.two_factor import (
    confirm_authenticator,
    issue_backup_codes,
    pending_authenticator,
)
from tests.factories import TEST_PASSWORD


def sign_in(client, username, password=TEST_PASSWORD, *, address="198.51.100.1"):
    """POST the admin login form from `address`; the answer (302 when signed in)."""
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
        REMOTE_ADDR=address,
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def code(device, *, steps_ahead=0) -> str:
    """The code an authenticator app shows for `device` now (or that many steps later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def wrong_code(device) -> str:
    """A well-formed code that no step the device accepts now would give."""
    accepted = {code(device, steps_ahead=steps) for steps in range(-2, 4)}
    return next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in accepted)


def verify(client, typed):
    return client.post(reverse("two_factor:verify"), {"code": typed})


def enrol(user):
    """Enrol `user` through the real functions; (device, backup codes).

    Confirmed with the current code: later sign-ins use the next one (as the app shows it
    after its 30 seconds), since a code is accepted once.
    """
    device = pending_authenticator(user)
    assert confirm_authenticator(device, code(device))
    return device, issue_backup_codes(user)


def sign_in_verified(client, user, device):
    """A session of `user` that has passed the second factor with `device`'s next code."""
    client.force_login(user)
    answer = verify(client, code(device, steps_ahead=1))
    assert answer.status_code == 302, answer.content.decode()
    return client


@pytest.fixture
def operator_device(operator_user):
    return enrol(operator_user)[0]
