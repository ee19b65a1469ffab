from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from clients.media import medium_choices
from clients.models import Application, Client


class NotificationStatus(models.TextChoices):
    ACCEPTED = "ACCEPTED", "Accepted"
    PROCESSING = "PROCESSING", "Processing"
    SENT = "SENT", "Sent"
    DELIVERED = "DELIVERED", "Delivered"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


class Source(models.TextChoices):
    API = "api", "API"
    BATCH = "batch", "Batch"


class DeliveryStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    SENDING = "SENDING", "Sending"
    SENT = "SENT", "Sent"
    DELIVERED = "DELIVERED", "Delivered"
    UNDELIVERED = "UNDELIVERED", "Undelivered"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"
    EXPIRED = "EXPIRED", "Expired"


# Two references the database does not check (migration 0013), Notification.batch and
# Delivery.notification: each is right by construction, and checking them was a third of
# the work of storing a batch line on PostgreSQL (per 2,000 lines, about 10 ms each of a
# 74 ms statement).
# - A notification's batch is the batch row its ingest holds locked and updates in the
#   same transaction. A delivery's notification is inserted in the same transaction,
#   and for a batch in the same statement, from the notification insert's RETURNING.
# - Neither notifications nor batches are deleted by the platform. A delete through
#   Django still protects a batch with notifications (PROTECT) and takes a
#   notification's deliveries with it (CASCADE); a delete in raw SQL (or a TRUNCATE
#   ... CASCADE) could leave a dangling reference.
# On PostgreSQL the other references are checked; on SQLite a notification's client and
# application are not either (migration 0012).


class Notification(models.Model):
    """One customer to notify, as asked by a client through the API or a batch line."""

    # No index of its own on client or batch: the unique constraints below lead with them.
    # On PostgreSQL one foreign key covers both client and application: (application_id,
    # client_id) refers to the application's (id, client_id), so a notification's client
    # is its application's client (migration 0012). One check a row instead of two.
    # No foreign key in the database for the batch (migration 0013): see above the class.
    client = models.ForeignKey(
        Client,
        on_delete=models.PROTECT,
        related_name="notifications",
        db_index=False,
        db_constraint=False,
    )
    application = models.ForeignKey(
        Application, on_delete=models.PROTECT, related_name="notifications", db_constraint=False
    )
    reference = models.CharField("clientNotifRefId", max_length=100)
    params = models.JSONField(
        "parameters", help_text="The validated application fields, as the client sent them."
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    batch = models.ForeignKey(
        "batches.Batch",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notifications",
        db_index=False,
        db_constraint=False,
    )
    batch_line = models.PositiveIntegerField(
        null=True, blank=True, help_text="The line of the batch file it came from."
    )
    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.ACCEPTED
    )
    send_at = models.DateTimeField(
        null=True, blank=True, help_text="sendAt: not sent before this time."
    )
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="expiresAt: a delivery not sent by then ends EXPIRED instead of going out late.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    purged_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When its personal data (parameters, texts, recipients) was purged "
        "after the client's retention period (notifications/retention.py).",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "reference"], name="unique_reference_per_client"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(source="api", batch__isnull=True)
                    | models.Q(source="batch", batch__isnull=False)
                ),
                name="batch_set_exactly_for_batch_source",
            ),
            # A resumed batch run can never accept a line twice.
            models.UniqueConstraint(
                fields=["batch", "batch_line"],
                condition=models.Q(batch__isnull=False),
                name="one_notification_per_batch_line",
            ),
        ]
        indexes = [
            # The dashboard's counts per day, client and source (kokatto_site/dashboard.py):
            # a range of days read from the index alone, however many months are kept.
            models.Index(
                fields=["created_at", "client", "source"], name="notification_dashboard_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client.client_id}:{self.reference}"


class Delivery(models.Model):
    """One medium of a notification: what was (or will be) sent to whom, and what happened."""

    # Indexed by one_delivery_per_medium, which leads with it. No foreign key in the
    # database (migration 0013): see above Notification.
    notification = models.ForeignKey(
        Notification,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,
        db_constraint=False,
    )
    medium = models.CharField(max_length=16, choices=medium_choices)
    recipient = models.CharField(max_length=254)
    recipient_digest = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="Once purged: the recipient's keyed hash (notifications/recipient_digest.py).",
    )
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True, help_text="The rendered content, once rendered.")
    html_body = models.TextField("HTML body", blank=True)
    template_version = models.ForeignKey(
        "templates_app.TemplateVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deliveries",
        help_text="The template version the content was rendered with.",
        db_index=False,  # a partial index below: most rows wait unrendered
    )
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(
        default=0, help_text="Times it was handed to a provider."
    )
    claims = models.PositiveIntegerField(
        default=0, help_text="Times a worker claimed it; the number identifies the current claim."
    )
    next_attempt_at = models.DateTimeField(
        default=timezone.now, help_text="A pending delivery is not sent before this time."
    )
    lease_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A sending delivery whose worker has not finished by then is claimed again.",
    )
    provider = models.CharField(max_length=64, blank=True)
    provider_message_id = models.CharField(max_length=128, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["notification", "medium"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "medium"], name="one_delivery_per_medium"
            )
        ]
        indexes = [
            # The dashboard's deliveries per medium and status of the last days
            # (kokatto_site/dashboard.py), read from the index alone.
            models.Index(fields=["created_at", "medium", "status"], name="delivery_dashboard_idx"),
            # An operator's "failed lately" and the like. Pending deliveries are left out (the
            # due index below serves them): a batch's inserts do not touch this one.
            models.Index(
                fields=["status", "updated_at"],
                condition=~models.Q(status="PENDING"),
                name="delivery_status_idx",
            ),
            # The dispatcher's claim: due pending deliveries, and expired leases.
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=models.Q(status="PENDING"),
                name="delivery_due_idx",
            ),
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(status="SENDING"),
                name="delivery_lease_idx",
            ),
            # Receipts find a delivery by its provider id; unsent ones have none.
            models.Index(
                fields=["provider_message_id"],
                condition=~models.Q(provider_message_id=""),
                name="delivery_provider_id_idx",
            ),
            models.Index(
                fields=["template_version"],
                condition=models.Q(template_version__isnull=False),
                name="delivery_template_version_idx",
            ),
            # Support's search by recipient (notifications/search.py): phone numbers are
            # stored in E.164 (lower() leaves them alone), email addresses as the client
            # wrote them, so one index on lower() answers both.
            models.Index(Lower("recipient"), name="delivery_recipient_idx"),
            # "Was this number notified?" after the purge; live rows have no digest.
            models.Index(
                fields=["recipient_digest"],
                condition=~models.Q(recipient_digest=""),
                name="delivery_recipient_digest_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notification} {self.get_medium_display()}"


class DeliveryEvent(models.Model):
    """An append-only record of one status change of a delivery."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    old_status = models.CharField(max_length=16, blank=True, choices=DeliveryStatus.choices)
    new_status = models.CharField(max_length=16, choices=DeliveryStatus.choices)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "at", "id"]

    def __str__(self) -> str:
        return f"{self.old_status or '∅'} → {self.new_status}"


class CallbackState(models.TextChoices):
    PENDING = "PENDING", "Pending"
    DONE = "DONE", "Done"
    FAILED = "FAILED", "Failed"


class ClientCallback(models.Model):
    """One status report to a client's callback URL, kept until it is acknowledged.

    Created in the same transaction as the status change it reports (an
    outbox, like deliveries), then POSTed and retried with backoff.
    """

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="callbacks"
    )
    url = models.URLField(max_length=500)
    payload = models.JSONField()
    state = models.CharField(
        max_length=8, choices=CallbackState.choices, default=CallbackState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_response = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state="PENDING"),
                name="callback_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.notification} → {self.payload.get('status')}"


class EarlyReceipt(models.Model):
    """A provider's receipt for a message id no delivery holds yet, kept until one does.

    A provider may report a message's fate before its send is recorded (the
    provider id is written with the group's outcomes, after the provider
    answered): such a receipt waits here and is applied when its id is
    recorded, or dropped after RECEIPT_WAIT_HOURS.
    """

    provider = models.CharField(max_length=64)
    provider_message_id = models.CharField(max_length=128)
    delivered = models.BooleanField()
    detail = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider_message_id", "provider"], name="early_receipt_unique_id"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_message_id}"


class AccessKind(models.TextChoices):
    VIEW = "VIEW", "Page viewed"
    EXPORT = "EXPORT", "CSV export"
    SEARCH = "SEARCH", "List searched"


class PersonalDataAccess(models.Model):
    """One reading of customers' personal data in the admin: a notification's (or a
    delivery's) page viewed, or a CSV export (notifications/access_records.py).

    Written for every user, operators included; listed for operators only, never edited.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    username = models.CharField(max_length=150, help_text="Kept if the user is deleted.")
    kind = models.CharField(max_length=8, choices=AccessKind.choices)
    address = models.GenericIPAddressField("from address", null=True, blank=True)
    client = models.ForeignKey(
        Client, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    notification = models.ForeignKey(
        Notification,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    reference = models.CharField("clientNotifRefId", max_length=100, blank=True)
    page = models.CharField(max_length=300, blank=True, help_text="The path read.")
    filters = models.TextField(blank=True, help_text="An export's filters (its query string).")
    row_count = models.PositiveIntegerField(
        "rows", null=True, blank=True, help_text="Rows exported; empty until the export ends."
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "personal data access"
        verbose_name_plural = "personal data accesses"
        indexes = [
            models.Index(
                fields=["reference"], condition=~models.Q(reference=""), name="access_reference_idx"
            ),
            models.Index(fields=["user", "at"], name="access_user_at_idx"),
        ]

    def __str__(self) -> str:
        what = self.reference or self.filters or "all"
        return f"{self.username}: {self.get_kind_display()} {what}"


class RetentionRun(models.Model):
    """One run of the personal-data purge (kokatto_site/retention.py) and what it removed."""

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(
        default=dict, help_text="Rows or files purged per kind, updated after each chunk."
    )

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"retention run {self.started_at:%Y-%m-%d %H:%M}"
