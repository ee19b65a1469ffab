import zoneinfo
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from clients.encryption import EncryptedTextField, decrypt_text, encrypt_text
from clients.media import get_medium, medium_choices
from clients.parameter_validation import RESERVED_PARAMETERS, java_date_format_to_strftime

code_validator = RegexValidator(
    r"^[A-Za-z0-9_-]+$", "Use only letters, digits, '-' and '_'.", code="invalid_code"
)
field_name_validator = RegexValidator(
    r"^[A-Za-z][A-Za-z0-9_]*$",
    "A field name starts with a letter and holds only letters, digits and '_'.",
    code="invalid_field_name",
)

MAX_ACTIVE_SECRET_KEYS = 2


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone.", code="invalid_time_zone")


# The names of the ways a client's batch files can be encrypted. batches/decryption.py
# declares them, above this app: batches/apps.py hands them here when Django starts.
_batch_encryption_names: Callable[[], Iterable[str]] = tuple


def batch_encryption_names_provide(names: Callable[[], Iterable[str]]) -> None:
    """Read the batch encryption methods from `names()` from now on."""
    global _batch_encryption_names
    _batch_encryption_names = names


def batch_encryption_choices() -> list[tuple[str, str]]:
    """The decryption methods batches/decryption.py registers (a new one needs no migration)."""
    return [(name, name) for name in _batch_encryption_names()]


class Client(models.Model):
    """A bank, lender or biller that sends notifications through the platform."""

    client_id = models.CharField(
        "client ID",
        max_length=32,
        unique=True,
        validators=[code_validator],
        help_text="The pre-agreed clientId, e.g. 8002.",
    )
    name = models.CharField(max_length=200)
    is_active = models.BooleanField("active", default=True)
    time_zone = models.CharField(
        max_length=64, default="Asia/Jakarta", validators=[validate_time_zone]
    )
    batch_password_encrypted = EncryptedTextField(
        blank=True, default="", editable=False, client_lookup="client_id"
    )
    batch_encryption = models.CharField(
        max_length=16,
        choices=batch_encryption_choices,
        default="7z",
        help_text="How the client encrypts its batch files (7z: with its batch password).",
    )
    batch_signature_required = models.BooleanField(
        "batch files must be signed",
        default=False,
        help_text="openpgp only: refuse (BAD_SIGNATURE) a batch file not signed by the "
        "client's own OpenPGP key.",
    )
    callback_url = models.URLField(
        "status callback URL",
        blank=True,
        help_text="Where the platform POSTs final notification statuses. Optional.",
    )
    quiet_hours_start = models.TimeField(
        null=True,
        blank=True,
        help_text="SMS and WhatsApp are held from this time (client's time zone). Empty: off.",
    )
    quiet_hours_end = models.TimeField(
        null=True, blank=True, help_text="…until this time, e.g. 21:00 to 08:00."
    )
    api_rate_per_minute = models.PositiveIntegerField(
        "API rate limit (requests per minute)",
        default=6000,
        help_text="Requests above this rate are answered 429 RATE_LIMITED.",
    )
    retention_days = models.PositiveIntegerField(
        "personal data kept (days)",
        null=True,
        blank=True,
        help_text="After this many days a finished notification's parameters, texts and "
        "recipients are purged. Empty: the platform's default (NOTIFICATION_RETENTION_DAYS).",
    )
    staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="kokatto_clients",
        help_text="Client staff users who manage this client's applications and templates.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["client_id"]

    def __str__(self) -> str:
        return f"{self.client_id} · {self.name}"

    @property
    def has_batch_password(self) -> bool:
        return bool(self.batch_password_encrypted)

    def set_batch_password(self, password: str) -> None:
        self.batch_password_encrypted = encrypt_text(password)

    def quiet_hours_end_after(self, moment: datetime) -> datetime | None:
        """When the quiet window holding `moment` ends, or None if `moment` is not in one."""
        start, end = self.quiet_hours_start, self.quiet_hours_end
        if start is None or end is None or start == end:
            return None
        local = moment.astimezone(zoneinfo.ZoneInfo(self.time_zone))
        now = local.time()
        # A window such as 21:00-08:00 spans midnight.
        inside = start <= now < end if start < end else (now >= start or now < end)
        if not inside:
            return None
        end_day = local.date() if now < end else local.date() + timedelta(days=1)
        return datetime.combine(end_day, end, tzinfo=local.tzinfo)

    def clean(self) -> None:
        if (self.quiet_hours_start is None) != (self.quiet_hours_end is None):
            raise ValidationError("Quiet hours need both a start and an end, or neither.")

    def batch_password(self) -> str:
        """The decrypted batch archive password ("" when none is set)."""
        if not self.batch_password_encrypted:
            return ""
        return decrypt_text(self.batch_password_encrypted)


class SecretKey(models.Model):
    """A secret that signs a client's API requests.

    At most two keys are active per client so that a client can rotate without
    downtime; the database enforces it with two slots, each held by at most one
    active key. The secret itself is stored encrypted and shown once.
    """

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="secret_keys")
    slot = models.PositiveSmallIntegerField(editable=False)
    secret_encrypted = EncryptedTextField(editable=False)
    fingerprint = models.CharField(
        max_length=16,
        editable=False,
        help_text="First characters of the SHA-256 of the secret, to tell keys apart.",
    )
    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField("last used", null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["client", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(slot__gte=1) & Q(slot__lte=MAX_ACTIVE_SECRET_KEYS),
                name="secret_key_slot_in_range",
            ),
            models.UniqueConstraint(
                fields=["client", "slot"],
                condition=Q(is_active=True),
                name="at_most_one_active_key_per_slot",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client.client_id} key {self.fingerprint}"

    def secret(self) -> str:
        return decrypt_text(self.secret_encrypted)


class Application(models.Model):
    """An "appType" of a client: one kind of notification with its own fields and media."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="applications")
    code = models.CharField(
        "appType", max_length=32, validators=[code_validator], help_text="e.g. ABC"
    )
    name = models.CharField(max_length=200, blank=True)
    brand_name = models.CharField(
        max_length=50,
        blank=True,
        help_text="The sender's brand; Indonesian operators block SMS without it.",
    )
    is_active = models.BooleanField("active", default=True)
    sms_segment_limit = models.PositiveSmallIntegerField(
        "SMS segment limit",
        default=3,
        help_text="An SMS template whose sample renders longer than this cannot be saved.",
    )
    expire_after_field = models.CharField(
        max_length=64,
        blank=True,
        help_text="A date field (e.g. dueDate): notifications without expiresAt expire at the "
        "end of that day, in the client's time zone. A reminder after the due date is worse "
        "than none.",
    )
    sample_values = models.JSONField(
        default=dict,
        blank=True,
        help_text='Values that template previews render, e.g. {"customerName": "John Doe"}. '
        "They must pass the field schema (save new fields first).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["client__client_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["client", "code"], name="unique_app_type_per_client"),
            # What a notification's (application, client) pair refers to, on PostgreSQL
            # (notifications/migrations/0012).
            models.UniqueConstraint(fields=["id", "client"], name="application_id_with_client"),
        ]

    def __str__(self) -> str:
        return f"{self.client.client_id}/{self.code}"

    def clean(self) -> None:
        """What the row alone tells; its checks against its fields are application_check's."""
        if not isinstance(self.sample_values, dict) or not all(
            isinstance(value, str) for value in self.sample_values.values()
        ):
            raise ValidationError(
                {"sample_values": 'A JSON object of texts, e.g. {"balance": "1230000"}.'}
            )


class FieldType(models.TextChoices):
    TEXT = "text", "Text"
    INTEGER = "integer", "Integer"
    DECIMAL = "decimal", "Decimal"
    DATE = "date", "Date"
    PHONE = "phone", "Phone number"
    EMAIL = "email", "Email address"


class Field(models.Model):
    """One pre-agreed key of an application's notifications (its field schema)."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="fields")
    name = models.CharField(max_length=64, validators=[field_name_validator])
    type = models.CharField(max_length=16, choices=FieldType.choices, default=FieldType.TEXT)
    required = models.BooleanField(default=True)
    max_length = models.PositiveIntegerField(
        null=True, blank=True, help_text="Longest accepted value, in characters. Optional."
    )
    date_format = models.CharField(
        max_length=32,
        blank=True,
        help_text="For date fields, e.g. dd-MM-yyyy (dd, MM, yyyy, yy, HH, mm, ss).",
    )

    class Meta:
        ordering = ["application", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "name"], name="unique_field_name_per_application"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_type_display()})"

    def clean(self) -> None:
        errors = {}
        if self.name in RESERVED_PARAMETERS:
            errors["name"] = f"{self.name!r} is a platform parameter, not an application field."
        if self.type == FieldType.DATE:
            if not self.date_format:
                errors["date_format"] = "A date field needs a format, e.g. dd-MM-yyyy."
            else:
                try:
                    java_date_format_to_strftime(self.date_format)
                except ValueError as exc:
                    errors["date_format"] = str(exc)
        elif self.date_format:
            errors["date_format"] = "Only date fields have a format."
        if self.max_length is not None and self.max_length > settings.API_MAX_PARAMETER_CHARS:
            errors["max_length"] = (
                f"At most {settings.API_MAX_PARAMETER_CHARS} characters: no parameter "
                "may be longer (API_MAX_PARAMETER_CHARS)."
            )
        if errors:
            raise ValidationError(errors)


class ApplicationMedium(models.Model):
    """A medium an application sends over, and the field holding its recipient address."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="media")
    medium = models.CharField(max_length=16, choices=medium_choices)
    recipient_field = models.ForeignKey(
        Field,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The field holding the address, e.g. msisdn for SMS.",
    )

    class Meta:
        ordering = ["application", "medium"]
        verbose_name = "medium"
        verbose_name_plural = "media"
        constraints = [
            models.UniqueConstraint(
                fields=["application", "medium"], name="unique_medium_per_application"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_medium_display()} to {self.recipient_field.name}"

    def clean(self) -> None:
        if not self.recipient_field_id or not self.medium:
            return
        field = self.recipient_field
        if field.application_id != self.application_id:
            raise ValidationError(
                {"recipient_field": "The recipient field must belong to this application."}
            )
        allowed = get_medium(self.medium).recipient_field_types
        if field.type not in allowed:
            raise ValidationError(
                {
                    "recipient_field": (
                        f"{self.get_medium_display()} needs a recipient field of type "
                        f"{' or '.join(allowed)}; {field.name!r} is {field.type}."
                    )
                }
            )
