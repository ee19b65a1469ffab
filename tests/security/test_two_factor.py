"""Two-factor sign-in: with ADMIN_TWO_FACTOR_REQUIRED, a password alone opens no admin page."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from kokatto_site.sign_in.two_factor import (
    authenticator_of,
    confirm_authenticator,
    pending_authenticator,
)
from tests.factories import UserFactory
from tests.security.conftest import (
    code,
    enrol,
    sign_in,
    sign_in_verified,
    signed_in,
    verify,
    wrong_code,
)

pytestmark = pytest.mark.usefixtures("two_factor_required")

ENROL = reverse("two_factor:enrol")


def wait_out_throttling():
    # django-otp refuses every code for 2**(failures - 1) seconds after a wrong one.
    time.sleep(1.1)


def admin_pages():
    """The index and every registered model's list and add pages."""
    pages = [reverse("admin:index"), reverse("admin:password_change")]
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        pages += [reverse(f"{prefix}_changelist"), reverse(f"{prefix}_add")]
    return pages


def test_a_password_alone_reaches_no_admin_page_before_enrolment(client, operator_user):
    assert sign_in(client, "operator").status_code == 302
    assert signed_in(client)

    for page in admin_pages():
        answer = client.get(page)
        assert answer.status_code == 302, page
        assert answer["Location"].startswith(f"{ENROL}?next="), page


def test_a_password_alone_reaches_no_admin_page_once_enrolled(client, operator_device):
    sign_in(client, "operator")

    for page in admin_pages():
        answer = client.get(page)
        assert answer.status_code == 302, page
        assert answer["Location"].startswith(reverse("two_factor:verify")), page


def test_a_session_of_a_user_no_longer_staff_ends_on_the_login_page(client, operator_user):
    client.force_login(operator_user)
    operator_user.is_staff = False
    operator_user.save()

    answer = client.get(reverse("admin:index"), follow=True)

    assert answer.redirect_chain[-1][0].startswith(reverse("admin:login"))
    assert "not authorized to access this page" in answer.content.decode()


def test_enrolment_shows_a_qr_code_and_the_secret_and_confirms_only_a_right_code(
    client, operator_user
):
    sign_in(client, "operator")
    page = client.get(ENROL).content.decode()
    device = TOTPDevice.objects.get(user=operator_user)
    assert "<svg" in page
    shown_secret = page.split('<code id="secret">')[1].split("</code>")[0]

    refused = client.post(ENROL, {"code": wrong_code(device)})
    assert "That code is wrong" in refused.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get(reverse("admin:index")).status_code == 302

    wait_out_throttling()
    confirmed = client.post(ENROL, {"code": code(device)})
    page = confirmed.content.decode()
    assert confirmed.status_code == 200
    assert "They are shown only now" in page
    codes = StaticDevice.objects.get(user=operator_user).token_set.values_list("token", flat=True)
    assert len(codes) == 10
    assert all(backup in page for backup in codes)
    assert authenticator_of(operator_user) == device
    assert shown_secret.replace(" ", "") in device.config_url
    assert client.get(reverse("admin:index")).status_code == 200


def test_confirming_one_enrolment_discards_one_started_in_another_tab(operator_user):
    device = pending_authenticator(operator_user)
    other_tab = TOTPDevice.objects.create(user=operator_user, confirmed=False)

    assert confirm_authenticator(device, code(device))

    assert not TOTPDevice.objects.filter(pk=other_tab.pk).exists()
    assert authenticator_of(operator_user) == device


def test_backup_codes_are_shown_once(client, operator_user):
    sign_in(client, "operator")
    client.get(ENROL)
    device = TOTPDevice.objects.get(user=operator_user)
    first = client.post(ENROL, {"code": code(device)}).content.decode()

    again = client.get(ENROL)

    assert again.status_code == 302
    for backup in StaticDevice.objects.get(user=operator_user).token_set.all():
        assert backup.token in first
        assert backup.token not in again.content.decode()


def test_a_used_code_is_refused_the_second_time(client, operator_device):
    used = code(operator_device, steps_ahead=1)
    sign_in(client, "operator")
    assert verify(client, used).status_code == 302
    client.post(reverse("admin:logout"))

    sign_in(client, "operator")
    replayed = verify(client, used)

    assert "That code is wrong or was already used" in replayed.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302
    wait_out_throttling()
    assert verify(client, code(operator_device, steps_ahead=2)).status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_after_a_wrong_code_even_the_right_one_must_wait(client, operator_device):
    sign_in(client, "operator")
    verify(client, wrong_code(operator_device))

    hurried = verify(client, code(operator_device, steps_ahead=1))

    assert "That code is wrong" in hurried.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302
    wait_out_throttling()
    assert verify(client, code(operator_device, steps_ahead=1)).status_code == 302


def test_a_backup_code_signs_in_once(client, operator_user):
    _, backup_codes = enrol(operator_user)
    sign_in(client, "operator")
    assert verify(client, backup_codes[0].upper()).status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200
    client.post(reverse("admin:logout"))

    sign_in(client, "operator")
    replayed = verify(client, backup_codes[0])

    assert "That code is wrong or was already used" in replayed.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302


def test_the_code_prompt_goes_back_to_the_page_asked_for_but_never_elsewhere(
    client, operator_device
):
    clients_page = reverse("admin:clients_client_changelist")
    sign_in(client, "operator")
    prompt = client.get(clients_page)["Location"]

    answer = client.post(prompt, {"code": code(operator_device, steps_ahead=1)})
    assert answer["Location"] == clients_page

    client.post(reverse("admin:logout"))
    sign_in(client, "operator")
    answer = client.post(
        f"{reverse('two_factor:verify')}?next=https://evil.example/",
        {"code": code(operator_device, steps_ahead=2)},
    )
    assert answer["Location"] == reverse("admin:index")


def test_an_operator_resets_a_users_second_factor_and_they_must_enrol_again(
    operator_user, operator_device
):
    support = UserFactory(username="helpdesk", role="support")
    support_device, _ = enrol(support)
    support_session = sign_in_verified(Client(), support, support_device)
    operator = sign_in_verified(Client(), operator_user, operator_device)

    answer = operator.post(
        reverse("admin:auth_user_changelist"),
        {"action": "reset_second_factor", "_selected_action": [support.pk]},
    )

    assert answer.status_code == 302
    assert not TOTPDevice.objects.filter(user=support).exists()
    assert not StaticDevice.objects.filter(user=support).exists()
    entry = LogEntry.objects.get(object_id=str(support.pk))
    assert entry.user == operator_user
    assert "Reset the second factor (2 device(s) removed)" in entry.change_message
    # The session they had verified is sent to enrolment, like a new sign-in.
    answer = support_session.get(reverse("admin:index"))
    assert answer["Location"].startswith(ENROL)


def test_client_staff_cannot_reset_second_factors(staff_8002, operator_user):
    target, _ = enrol(operator_user)
    staff_device, _ = enrol(staff_8002)
    staff = sign_in_verified(Client(), staff_8002, staff_device)

    reset = staff.post(
        reverse("admin:auth_user_changelist"),
        {"action": "reset_second_factor", "_selected_action": [operator_user.pk]},
    )
    delete = staff.post(
        reverse("admin:otp_totp_totpdevice_delete", args=[target.pk]), {"post": "yes"}
    )

    assert reset.status_code == 403
    assert delete.status_code == 403
    assert staff.get(reverse("admin:otp_totp_totpdevice_changelist")).status_code == 403
    assert TOTPDevice.objects.filter(pk=target.pk).exists()


def test_the_login_page_says_a_code_follows_the_password(client):
    note = client.get(reverse("admin:login")).content.decode()

    assert "a code from your authenticator app" in note


SHOW_SETTING = "from django.conf import settings; print(settings.ADMIN_TWO_FACTOR_REQUIRED)"


@pytest.mark.parametrize(("debug", "required"), [("true", "False"), ("false", "True")])
def test_two_factor_is_required_unless_debug(debug, required, tmp_path):
    environment = {
        key: value for key, value in os.environ.items() if key != "ADMIN_TWO_FACTOR_REQUIRED"
    }
    shown = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SHOW_SETTING],
        cwd=Path(__file__).resolve().parents[2],
        env={**environment, "DEBUG": debug, "KOKATTO_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )

    assert shown.stdout.split()[-1] == required
