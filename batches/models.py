from django.db import models

from clients.models import Client


class BatchStatus(models.TextChoices):
    RECEIVED = "RECEIVED", "Received"
    PROCESSING = "PROCESSING", "Processing"
    DONE = "DONE", "Done"
    FAILED = "FAILED", "Failed"
    DUPLICATE = "DUPLICATE", "Duplicate"


class Batch(models.Model):
    """One file a client uploaded to its inbox. The batch issue fills in ingestion."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="batches")
    file_name = models.CharField(max_length=255)
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.RECEIVED
    )
    lines_read = models.PositiveIntegerField(default=0)
    lines_accepted = models.PositiveIntegerField(default=0)
    lines_rejected = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"{self.client.client_id}/{self.file_name}"
