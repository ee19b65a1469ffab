import io
import stat

import paramiko
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from batches.gateway.accounts import gateway_account_authenticate
from batches.models import Batch, BatchStatus, GatewayAccount, RejectedLine
from clients.models import Application, Client, SecretKey
from clients.parameter_validation import validate_parameters
from kokatto_site.dashboard import dashboard_compute
from kokatto_site.demo import (
    DEMO_BATCH_PASSWORD,
    DEMO_GATEWAY_PASSWORD,
    DEMO_GATEWAY_USER,
    DEMO_SECRET_KEY,
    DEMO_USERS,
)
from notifications.models import Delivery, DeliveryEvent, Notification
from templates_app.models import ContentTemplate

# What seed_demo creates, counted to prove a second run creates nothing.
SEEDED_MODELS = (
    Client,
    Application,
    ContentTemplate,
    SecretKey,
    get_user_model(),
    Notification,
    Delivery,
    DeliveryEvent,
    Batch,
    RejectedLine,
)


@pytest.fixture(autouse=True)
def demo_key_in_a_scratch_var(scratch_var):
    pass


def seed(**options):
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def test_seed_demo_is_idempotent(db):
    first = seed(force=True)
    counts = [model.objects.count() for model in SEEDED_MODELS]
    again = seed(force=True)

    assert counts == [model.objects.count() for model in SEEDED_MODELS]
    assert counts[:2] == [2, 2]
    for username, password, _, _, _ in DEMO_USERS:
        assert f"{username:<10} / {password}" in first
    assert DEMO_SECRET_KEY in first
    assert "already issued" in again
    assert "Demo notifications and batch: already there." in again


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


def test_the_demo_sends_notifications_of_both_clients_through_the_pipeline(db):
    output = seed(force=True)

    deliveries = Delivery.objects.select_related("notification__client")
    assert {d.notification.client.client_id for d in deliveries} == {"8002", "8003"}
    assert {d.medium for d in deliveries} == {"sms", "email", "whatsapp"}
    assert {d.status for d in deliveries} >= {
        "PENDING",
        "SENT",
        "DELIVERED",
        "UNDELIVERED",
        "EXPIRED",
        "CANCELLED",
    }
    # Rendered and sent as a real send is, with its history.
    sent = deliveries.filter(status__in=["SENT", "DELIVERED", "UNDELIVERED"])
    assert sent.count() >= 24
    assert {(d.medium, d.provider) for d in sent} == {
        ("sms", "console"),
        ("email", "email"),
        ("whatsapp", "console"),
    }
    assert all(d.template_version_id for d in sent)
    assert all("Dear Mr. " in d.body for d in sent if d.medium != "whatsapp")
    assert all(d.body.startswith("Halo ") for d in sent if d.medium == "whatsapp")
    delivered = deliveries.filter(status="DELIVERED").first()
    history = list(delivered.events.order_by("pk").values_list("new_status", flat=True))
    assert history == ["SENDING", "SENT", "DELIVERED"]
    # Nothing of the console backends' printing in the command's output.
    assert "------" not in output


def test_the_demo_batch_is_a_real_7z_file_ingested_with_rejected_lines(db):
    output = seed(force=True)

    [batch] = Batch.objects.all()
    assert batch.status == BatchStatus.DONE
    assert (batch.lines_accepted, batch.lines_rejected) == (10, 3)
    assert batch.result_path
    assert sorted(batch.rejected_lines.values_list("code", flat=True)) == [
        "DUPLICATE_REFERENCE",
        "VALIDATION_ERROR",
        "VALIDATION_ERROR",
    ]
    assert batch.notifications.count() == 10
    assert f"{batch.file_name}: DONE, 10 lines accepted, 3 rejected" in output


def test_the_dashboard_is_not_empty_after_the_demo(db):
    seed(force=True)

    figures = dashboard_compute(client_ids=None, internals=True, now=timezone.now())

    assert figures["accepted"]["today"] == Notification.objects.count()
    assert {row["client"] for row in figures["accepted"]["clients"]} == {"8002", "8003"}
    assert figures["rates"]["decided"] > 0
    assert figures["queue"]["scheduled"] >= 1
