import io
import stat

import paramiko
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from batches.gateway.accounts import gateway_account_authenticate
from batches.models import GatewayAccount
from clients.models import Application, Client, SecretKey
from clients.parameter_validation import validate_parameters
from kokatto_site.demo import (
    DEMO_BATCH_PASSWORD,
    DEMO_GATEWAY_PASSWORD,
    DEMO_GATEWAY_USER,
    DEMO_SECRET_KEY,
    DEMO_USERS,
)
from templates_app.models import ContentTemplate


@pytest.fixture(autouse=True)
def demo_key_in_a_scratch_var(settings, tmp_path):
    # seed_demo keeps the demo SFTP key in VAR_DIR: not the project's var/ in a test.
    settings.VAR_DIR = tmp_path


def seed(**options):
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def test_seed_demo_is_idempotent(db):
    first = seed(force=True)
    counts = [
        model.objects.count()
        for model in (Client, Application, ContentTemplate, SecretKey, get_user_model())
    ]
    again = seed(force=True)

    assert counts == [
        model.objects.count()
        for model in (Client, Application, ContentTemplate, SecretKey, get_user_model())
    ]
    assert counts[:2] == [2, 2]
    for username, password, _, _, _ in DEMO_USERS:
        assert f"{username:<10} / {password}" in first
    assert DEMO_SECRET_KEY in first
    assert "already issued" in again


def test_demo_users_sign_in_to_the_control_panel_with_their_password(client, db):
    seed(force=True)

    for username, password, *_ in DEMO_USERS:
        answer = client.post(
            reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"}
        )
        assert answer.status_code == 302, username
        assert answer["Location"] == "/admin/", username
        assert client.get("/admin/").status_code == 200, username
        client.post(reverse("admin:logout"))


def test_the_demo_login_page_says_two_factor_sign_in_is_off(client, db):
    page = " ".join(client.get(reverse("admin:login")).content.decode().split())

    assert "Two-factor sign-in is off here" in page


def test_the_demo_application_accepts_the_integration_documents_example(db):
    seed(force=True)
    application = Application.objects.get(client__client_id="8002", code="ABC")

    result = validate_parameters(
        fields=application.fields.all(),
        values={"customerName": "John Doe", "balance": "1230000", "dueDate": "09-09-2015"},
        application_code="ABC",
    )

    assert result.is_valid, result.errors
    sms = ContentTemplate.objects.get(application=application, medium="sms")
    assert sms.body.startswith("Dear Mr. [customerName],")
    assert "Rp [balance] due on [dueDate]" in sms.body


def test_seed_demo_refuses_to_run_without_debug(db, settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG"):
        seed()
    assert not Client.objects.exists()


def test_the_demo_sets_client_8002_up_for_its_first_upload_over_sftp(db, settings):
    first = seed(force=True)
    seed(force=True)

    client = Client.objects.get(client_id="8002")
    [account] = GatewayAccount.objects.filter(username=DEMO_GATEWAY_USER)
    key_path = settings.VAR_DIR / "demo_sftp_key"
    private_key = paramiko.Ed25519Key.from_private_key_file(str(key_path))
    assert client.batch_password() == DEMO_BATCH_PASSWORD
    assert account.client == client
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    for credential in ({"password": DEMO_GATEWAY_PASSWORD}, {"public_key": private_key.asbytes()}):
        assert (
            gateway_account_authenticate(
                username=DEMO_GATEWAY_USER, protocol="sftp", address="127.0.0.1", **credential
            )
            == account
        )
    # The README's FTPS first upload (curl) logs in with the same password.
    ftps_login = {"username": DEMO_GATEWAY_USER, "password": DEMO_GATEWAY_PASSWORD}
    assert gateway_account_authenticate(protocol="ftps", address="127.0.0.1", **ftps_login)
    assert f"{DEMO_GATEWAY_USER} / {DEMO_GATEWAY_PASSWORD}" in first
    assert str(key_path) in first
