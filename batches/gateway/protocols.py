"""The protocols a client may use to reach the file-transfer gateway: one list for the
accounts (which each may use), the audit trail and the brute-force defence."""

from django.db import models


class GatewayProtocol(models.TextChoices):
    SFTP = "sftp", "SFTP"
    FTPS = "ftps", "FTPS"
