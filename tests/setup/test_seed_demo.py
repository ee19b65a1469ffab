import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from clients.models import Application, Client, SecretKey
from clients.parameter_validation import validate_parameters
from kokatto_site.demo import DEMO_SECRET_KEY, DEMO_USERS
from templates_app.models import ContentTemplate


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
