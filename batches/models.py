import ipaddress

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from batches.gateway.protocols import GatewayProtocol
from batches.gateway.public_keys import public_key_parse
from clients.encryption import EncryptedTextField, decrypt_text, encrypt_text
from clients.models import Client


class BatchStatus(models.TextChoices):
    RECEIVED = "RECEIVED", "Received"
    PROCESSING = "PROCESSING", "Processing"
    DONE = "DONE", "Done"
    FAILED = "FAILED", "Failed"
    DUPLICATE = "DUPLICATE", "Duplicate"


UNFINISHED = [BatchStatus.RECEIVED, BatchStatus.PROCESSING]


class Batch(models.Model):
    """One file a client uploaded to its inbox, and what became of each of its lines.

    batches/ingest.py reads it; `checkpoint_line` is the last line whose outcome
    is committed, so a run that died resumes after it.
    """

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="batches")
    file_name = models.CharField(max_length=255, help_text="The name the client uploaded.")
    inbox_path = models.CharField(
        max_length=500, default="", help_text="Where it was found in the storage."
    )
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField("SHA-256", max_length=64, blank=True)
    encryption = models.CharField(max_length=16, blank=True)
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.RECEIVED
    )
    failure_code = models.CharField(max_length=32, blank=True)
    failure_message = models.TextField(blank=True)
    duplicate_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="duplicates"
    )
    lines_read = models.PositiveIntegerField(default=0)
    lines_accepted = models.PositiveIntegerField(default=0)
    lines_rejected = models.PositiveIntegerField(default=0)
    checkpoint_line = models.PositiveIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0, help_text="Size of the decrypted CSV.")
    bytes_done = models.BigIntegerField(default=0)
    runs = models.PositiveIntegerField(default=0, help_text="Ingest runs started.")
    runs_since_progress = models.PositiveIntegerField(
        default=0, help_text="Ingest runs started since a run last stored a chunk of lines."
    )
    requeued_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the poll last queued it again."
    )
    lease_token = models.CharField(max_length=32, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    result_path = models.CharField(max_length=500, blank=True)
    archived_path = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"
        constraints = [
            # The same bytes are never ingested twice: a re-upload becomes a DUPLICATE.
            models.UniqueConstraint(
                fields=["client", "sha256"],
                condition=~models.Q(sha256="") & ~models.Q(status="DUPLICATE"),
                name="unique_batch_content_per_client",
            ),
            # Two overlapping inbox polls cannot both take the same file.
            models.UniqueConstraint(
                fields=["client", "inbox_path"],
                condition=models.Q(status__in=["RECEIVED", "PROCESSING"]),
                name="one_open_batch_per_inbox_file",
            ),
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="batch_status_idx")]

    def __str__(self) -> str:
        return f"{self.client.client_id}/{self.file_name}"

    @property
    def progress_percent(self) -> int:
        if self.status not in UNFINISHED:
            return 100
        if not self.bytes_total:
            return 0
        return min(100, self.bytes_done * 100 // self.bytes_total)


class RejectedLine(models.Model):
    """A line of a batch that was not accepted, and why (the result file says the same)."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="rejected_lines")
    line = models.PositiveIntegerField()
    reference = models.CharField("clientNotifRefId", max_length=100, blank=True)
    code = models.CharField(max_length=32)
    message = models.TextField()

    class Meta:
        ordering = ["batch", "line"]
        constraints = [
            # A resumed run can never reject a line twice.
            models.UniqueConstraint(fields=["batch", "line"], name="one_rejection_per_batch_line")
        ]
        # The batch page's search by reference (rejections are few: cheap to keep).
        indexes = [models.Index(fields=["batch", "reference"], name="rejected_line_reference_idx")]

    def __str__(self) -> str:
        return f"line {self.line}: {self.code}"


class InboxSighting(models.Model):
    """What the last inbox poll saw of a file: it is taken once two looks agree."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField()
    modified_at = models.DateTimeField()
    seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "name"], name="one_sighting_per_inbox_file")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.size_bytes} bytes at {self.modified_at:%H:%M:%S})"


def validate_networks(value: str) -> None:
    """Source networks, CIDR (or single addresses), separated by commas, spaces or lines."""
    for item in network_list(value):
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValidationError(
                f"{item!r} is not a network: write CIDR such as 203.0.113.0/24 or 2001:db8::/32."
            ) from None


def network_list(value: str) -> list[str]:
    return value.replace(",", " ").split()


class GatewayAccount(models.Model):
    """A login of the file-transfer gateway: it sees only its client's inbox and outbox."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="gateway_accounts")
    username = models.CharField(
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z",
                "Letters, digits, '.', '_' and '-' only, starting with a letter or digit.",
            )
        ],
    )
    password = models.CharField(
        max_length=128, blank=True, editable=False, help_text="Django password hash; empty: none."
    )
    enabled = models.BooleanField(default=True)
    sftp_allowed = models.BooleanField("SFTP allowed", default=True)
    ftps_allowed = models.BooleanField("FTPS allowed", default=False)
    allowed_networks = models.TextField(
        blank=True,
        validators=[validate_networks],
        help_text="Source networks in CIDR, separated by commas or lines; empty: any address.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["username"]

    def __str__(self):
        return self.username

    def protocols(self) -> list[str]:
        allowed = {GatewayProtocol.SFTP: self.sftp_allowed, GatewayProtocol.FTPS: self.ftps_allowed}
        return [str(protocol) for protocol, on in allowed.items() if on]


class GatewayPublicKey(models.Model):
    """An authorised public key of a gateway account (one OpenSSH key line)."""

    account = models.ForeignKey(GatewayAccount, on_delete=models.CASCADE, related_name="keys")
    key_type = models.CharField(max_length=40, editable=False)
    key = models.TextField(help_text="The OpenSSH public key line (the .pub file).")
    fingerprint = models.CharField("SHA-256 fingerprint", max_length=60, editable=False)
    comment = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "fingerprint"], name="gateway_key_once_per_account"
            )
        ]

    def __str__(self):
        return f"{self.fingerprint} {self.comment}".strip()

    def clean(self):
        """Read the key line: its type, fingerprint and comment come from it."""
        parsed = public_key_parse(self.key or "")
        self.key, self.key_type, self.fingerprint = (
            parsed.line(),
            parsed.key_type,
            parsed.fingerprint,
        )
        self.comment = self.comment or parsed.comment[: self._meta.get_field("comment").max_length]


class GatewayAction(models.TextChoices):
    LOGIN = "LOGIN", "Login"
    LOGIN_REFUSED = "LOGIN_REFUSED", "Login refused"
    UPLOAD = "UPLOAD", "Upload"
    DOWNLOAD = "DOWNLOAD", "Download"
    RENAME = "RENAME", "Rename"
    DELETE = "DELETE", "Delete"


class GatewayOutcome(models.TextChoices):
    OK = "ok", "OK"
    REFUSED = "refused", "Refused"
    FAILED = "failed", "Failed"


class GatewayEvent(models.Model):
    """One login, upload, download, rename or delete on the gateway (batches/gateway/audit.py).

    Deleted after GATEWAY_EVENT_RETENTION_DAYS (batches/retention.py).
    """

    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    account = models.ForeignKey(
        GatewayAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    username = models.CharField(max_length=150, help_text="As the client gave it.")
    protocol = models.CharField(max_length=8, choices=GatewayProtocol.choices)
    address = models.CharField("source address", max_length=45)
    action = models.CharField(max_length=16, choices=GatewayAction.choices)
    file_name = models.CharField(max_length=300, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField("SHA-256", max_length=64, null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=8, choices=GatewayOutcome.choices)
    reason = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "gateway event"
        # A client's events, newest first (the admin's list for client staff).
        indexes = [models.Index(fields=["client", "at"], name="gateway_event_client_at_idx")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.username} ({self.get_outcome_display()})"


# The file-transfer gateway's brute-force defence (batches/gateway/defender.py).
def _user_who(help_text: str) -> models.ForeignKey:
    """The user who did something to a key: empty when a command did it or the user is gone."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text=help_text,
    )


class OpenPGPPlatformKey(models.Model):
    """The platform's OpenPGP key pair for one client: clients encrypt batch files to it.

    Several per client (rotation): the current one is the newest not retired. The private key
    is armoured and encrypted at rest, never shown.
    """

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="openpgp_keys")
    private_key_encrypted = EncryptedTextField(editable=False)
    public_key = models.TextField(editable=False, help_text="ASCII-armoured.")
    fingerprint = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = _user_who("Empty when generated by a command or on first use.")
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)
    retired_by = _user_who("Empty when retired by a command.")

    class Meta:
        ordering = ["client", "-created_at"]
        verbose_name = "platform OpenPGP key"

    def __str__(self) -> str:
        return f"{self.client.client_id} · {self.fingerprint}"

    def set_private_key(self, armoured: str) -> None:
        self.private_key_encrypted = encrypt_text(armoured)

    def private_key(self) -> str:
        return decrypt_text(self.private_key_encrypted)


class OpenPGPClientKey(models.Model):
    """The client's own OpenPGP public key (one per client): result files go back to it."""

    client = models.OneToOneField(
        Client, on_delete=models.CASCADE, related_name="openpgp_client_key"
    )
    public_key = models.TextField(editable=False, help_text="ASCII-armoured.")
    fingerprint = models.CharField(max_length=64, editable=False)
    uploaded_at = models.DateTimeField(editable=False)
    uploaded_by = _user_who("Empty when set by a command.")

    class Meta:
        verbose_name = "client OpenPGP key"

    def __str__(self) -> str:
        return f"{self.client.client_id} · {self.fingerprint}"


from batches.gateway.ban_models import GatewayLoginFailure, GatewayScore  # noqa: E402, F401
