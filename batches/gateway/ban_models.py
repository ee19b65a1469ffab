"""What the gateway's brute-force defence stores (batches/gateway/defender.py).

Imported at the end of batches/models.py, so these are models of the batches app.
"""

from django.db import models

from batches.gateway.protocols import GatewayProtocol


class LoginFailureReason(models.TextChoices):
    WRONG_PASSWORD = "WRONG_PASSWORD", "Wrong password"
    WRONG_KEY = "WRONG_KEY", "Wrong key"
    UNKNOWN_USER = "UNKNOWN_USER", "Unknown user"
    DISABLED_ACCOUNT = "DISABLED_ACCOUNT", "Disabled account"
    ADDRESS_NOT_ALLOWED = "ADDRESS_NOT_ALLOWED", "Address not allowed"
    PROTOCOL_NOT_ALLOWED = "PROTOCOL_NOT_ALLOWED", "Protocol not allowed"


class ScoreKind(models.TextChoices):
    ADDRESS = "ADDRESS", "Address"
    USERNAME = "USERNAME", "User name"


class GatewayScore(models.Model):
    """One source's failed logins in its current window, and its ban: one row per source.

    A source is an address (an IPv6 one by its /64) or a user name. Failures add to
    `score` instead of adding rows, so a flood from one source never grows the table.
    """

    kind = models.CharField(max_length=8, choices=ScoreKind.choices)
    value = models.CharField(max_length=150)
    score = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    last_failure_at = models.DateTimeField()
    banned_until = models.DateTimeField(null=True, blank=True)
    ban_count = models.PositiveIntegerField("bans so far", default=0)

    class Meta:
        verbose_name = "gateway ban"
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="one_gateway_score_per_source")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.value}"


class GatewayLoginFailure(models.Model):
    """One failed gateway login, for the admin's list; pruned by age and by count."""

    address = models.GenericIPAddressField()
    username = models.CharField(max_length=150)
    protocol = models.CharField(max_length=8, choices=GatewayProtocol.choices)
    reason = models.CharField(max_length=24, choices=LoginFailureReason.choices)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "gateway failed login"

    def __str__(self) -> str:
        return f"{self.username or '?'} from {self.address}: {self.get_reason_display()}"
