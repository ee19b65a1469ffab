"""End to end, in a real browser: a first sign-in with two-factor on enrols an authenticator."""

from base64 import b32decode

import pytest
from django.urls import reverse
from django_otp.oath import TOTP

from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = [
    pytest.mark.e2e,
    # The role groups come from a data migration: they must survive the flush.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


@pytest.fixture
def new_operator(db):
    # Before the browser starts: see tests/e2e/conftest.py.
    return UserFactory(username="new-operator", role="operator")


def app_code(secret: str) -> str:
    """What an authenticator app set up with the typed-in secret shows now."""
    return f"{TOTP(b32decode(secret.replace(' ', ''))).token():06d}"


def test_a_first_sign_in_enrols_an_authenticator_from_the_secret_shown_and_reaches_the_admin(
    two_factor_required, new_operator, live_server, page
):
    page.goto(live_server.url + reverse("admin:index"))
    expect(page.locator("#two-factor-note")).to_contain_text("a code from your authenticator app")
    page.fill("input[name=username]", "new-operator")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("input[type=submit]")

    expect(page.locator("h1")).to_have_text("Set up two-factor sign-in")
    expect(page.locator("#qr-code svg")).to_be_visible()
    secret = page.locator("#secret").inner_text()
    page.fill("input[name=code]", app_code(secret))
    page.click("input[type=submit]")

    expect(page.locator("h1")).to_have_text("Two-factor sign-in is set up")
    expect(page.locator("#backup-codes li")).to_have_count(10)
    page.click("#continue")

    expect(page.locator("#site-name")).to_contain_text("Kokatto notification platform")
    expect(page.locator("#content h1")).to_have_text("Control panel")
    expect(page.locator("#user-tools")).to_contain_text("new-operator")
    expect(page.locator("#content-main")).to_contain_text("Clients")
