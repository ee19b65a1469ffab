"""Demo data for `make run`: two clients, an application, templates and one user per role.

Idempotent: running it again changes nothing that is already there. The demo
secret key is the well-known one of the README's signing examples, so that the
README's curl command works against a fresh `make run` as written.
"""

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from batches.gateway.accounts import gateway_account_create
from batches.gateway.protocols import GatewayProtocol
from batches.models import GatewayAccount
from clients.keys import SecretKeyError, fingerprint_of, secret_key_create
from clients.models import Application, ApplicationMedium, Client, Field, FieldType
from clients.onboarding import client_set_batch_password
from clients.roles import CLIENT_STAFF, OPERATORS, SUPPORT
from kokatto_site.local_secrets import new_ed25519_pem, read_or_create_secret
from templates_app.models import ContentTemplate
from templates_app.versions import template_save

DEMO_SECRET_KEY = "kokatto-demo-secret-0123456789abcdef"  # noqa: S105 (public by design)
# Client 8002's batch archive password and its file-transfer login, for the README's first
# upload: public, like everything here.
DEMO_BATCH_PASSWORD = "kokatto-demo-batch-password"  # noqa: S105
DEMO_GATEWAY_USER = "bankdemo"
DEMO_GATEWAY_PASSWORD = "kokatto-bankdemo-sftp"  # noqa: S105

DEMO_SMS_BODY = (
    "Dear Mr. [customerName],\n\n"
    "We would like to inform you that you have a balance of Rp [balance] due on [dueDate]. "
    "Please ignore if you have paid."
)
DEMO_EMAIL_SUBJECT = "Payment reminder: Rp [balance|rupiah] due on [dueDate|date:d MMMM yyyy]"
DEMO_EMAIL_BODY = (
    "Dear Mr. [customerName],\n\n"
    "We would like to inform you that you have a balance of Rp [balance|rupiah] due on "
    "[dueDate|date:d MMMM yyyy]. Please ignore if you have paid.\n\nPT Bank Demo Nusantara"
)
DEMO_EMAIL_HTML = (
    "<p>Dear Mr. [customerName],</p>\n"
    "<p>We would like to inform you that you have a balance of "
    "<strong>Rp [balance|rupiah]</strong> due on <strong>[dueDate|date:d MMMM yyyy]</strong>. "
    "Please ignore if you have paid.</p>\n"
    "<p>PT Bank Demo Nusantara</p>"
)
DEMO_WHATSAPP_BODY = (
    "Halo [customerName], angsuran Anda sebesar Rp [balance|rupiah] jatuh tempo pada "
    "[dueDate|date:d MMMM yyyy]. Abaikan pesan ini jika sudah membayar."
)
DEMO_SAMPLE_VALUES = {
    "customerName": "John Doe",
    "balance": "1230000",
    "dueDate": "09-09-2015",
    "msisdn": "+6281234567890",
    "email": "john.doe@example.co.id",
}

# (username, password, role group, client ids, what the role is for)
DEMO_USERS = [
    ("operator", "kokatto-operator-demo", OPERATORS, [], "everything"),
    ("support", "kokatto-support-demo", SUPPORT, [], "read-only; find a notification by id"),
    ("staff8002", "kokatto-staff8002-demo", CLIENT_STAFF, ["8002"], "client staff of 8002"),
    ("staff8003", "kokatto-staff8003-demo", CLIENT_STAFF, ["8003"], "client staff of 8003"),
]

# The integration document's example fields, plus one recipient field per medium.
DEMO_FIELDS = [
    {"name": "customerName", "type": FieldType.TEXT, "required": True, "max_length": 100},
    {"name": "balance", "type": FieldType.INTEGER, "required": True},
    {"name": "dueDate", "type": FieldType.DATE, "required": True, "date_format": "dd-MM-yyyy"},
    {"name": "msisdn", "type": FieldType.PHONE, "required": False},
    {"name": "email", "type": FieldType.EMAIL, "required": False, "max_length": 254},
]


@dataclass
class DemoSummary:
    users: list[tuple[str, str, str]] = field(default_factory=list)
    secret_key: str = ""
    secret_key_note: str = ""
    gateway_key_path: Path | None = None


@transaction.atomic
def demo_seed() -> DemoSummary:
    """Create (or leave as they are) the demo clients, application, templates and users."""
    summary = DemoSummary()
    bank, _ = Client.objects.get_or_create(
        client_id="8002", defaults={"name": "PT Bank Demo Nusantara"}
    )
    lender, _ = Client.objects.get_or_create(
        client_id="8003", defaults={"name": "PT Pembiayaan Contoh"}
    )
    _demo_application(bank, code="ABC", name="Payment reminder", brand="Bank Demo")
    lender_application = _demo_application(
        lender, code="XYZ", name="Instalment reminder", brand="Pembiayaan Contoh"
    )
    _demo_whatsapp(lender_application)

    clients_by_id = {"8002": bank, "8003": lender}
    for username, password, group_name, client_ids, purpose in DEMO_USERS:
        user = _demo_user(username, password, group_name)
        for client_id in client_ids:
            clients_by_id[client_id].staff.add(user)
        summary.users.append((username, password, purpose))

    summary.secret_key, summary.secret_key_note = _demo_secret_key(bank)
    if not bank.has_batch_password:
        client_set_batch_password(client=bank, password=DEMO_BATCH_PASSWORD)
    summary.gateway_key_path = _demo_gateway_account(bank)
    return summary


def _demo_application(client: Client, *, code: str, name: str, brand: str) -> Application:
    application, _ = Application.objects.get_or_create(
        client=client,
        code=code,
        defaults={"name": name, "brand_name": brand, "sample_values": DEMO_SAMPLE_VALUES},
    )
    fields = {}
    for spec in DEMO_FIELDS:
        fields[spec["name"]], _ = Field.objects.get_or_create(
            application=application,
            name=spec["name"],
            defaults={key: value for key, value in spec.items() if key != "name"},
        )
    for medium, recipient in (("sms", "msisdn"), ("email", "email")):
        ApplicationMedium.objects.get_or_create(
            application=application, medium=medium, defaults={"recipient_field": fields[recipient]}
        )
    _demo_template(application, "sms", {"body": DEMO_SMS_BODY})
    _demo_template(
        application,
        "email",
        {"subject": DEMO_EMAIL_SUBJECT, "body": DEMO_EMAIL_BODY, "html_body": DEMO_EMAIL_HTML},
    )
    return application


def _demo_whatsapp(application: Application) -> None:
    """WhatsApp too, for the customers who gave a WhatsApp number (its own optional field)."""
    number, _ = Field.objects.get_or_create(
        application=application,
        name="whatsapp",
        defaults={"type": FieldType.PHONE, "required": False},
    )
    ApplicationMedium.objects.get_or_create(
        application=application, medium="whatsapp", defaults={"recipient_field": number}
    )
    _demo_template(
        application,
        "whatsapp",
        {"body": DEMO_WHATSAPP_BODY, "provider_template_name": "instalment_reminder"},
    )


def _demo_template(application: Application, medium: str, content: dict) -> None:
    template, created = ContentTemplate.objects.get_or_create(
        application=application, medium=medium, defaults=content
    )
    if created:
        template_save(template=template, summary="demo data")


def _demo_user(username: str, password: str, group_name: str):
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model.objects.create_user(username=username, password=password, is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def _demo_gateway_account(client: Client) -> Path:
    """Client 8002's SFTP and FTPS login, by password (or over SFTP by a key pair kept in
    var/); the key's path."""
    key_path = Path(settings.VAR_DIR) / "demo_sftp_key"
    private_key = serialization.load_ssh_private_key(
        read_or_create_secret(key_path, new_ed25519_pem).encode() + b"\n", password=None
    )
    public_key = private_key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    if not GatewayAccount.objects.filter(username=DEMO_GATEWAY_USER).exists():
        gateway_account_create(
            client=client,
            username=DEMO_GATEWAY_USER,
            password=DEMO_GATEWAY_PASSWORD,
            public_keys=[f"{public_key.decode()} demo"],
            protocols=[GatewayProtocol.SFTP, GatewayProtocol.FTPS],
        )
    return key_path


def _demo_secret_key(client: Client) -> tuple[str, str]:
    fingerprint = fingerprint_of(DEMO_SECRET_KEY)
    if client.secret_keys.filter(fingerprint=fingerprint, is_active=True).exists():
        return DEMO_SECRET_KEY, "already issued"
    try:
        secret_key_create(client=client, secret=DEMO_SECRET_KEY)
    except SecretKeyError as exc:
        return "", str(exc)
    return DEMO_SECRET_KEY, "issued now"
