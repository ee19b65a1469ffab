from django.core.exceptions import ValidationError
from django.db import models

from clients.models import Application
from notifications.media import medium_choices


class ContentTemplate(models.Model):
    """The content of one medium of an application, e.g. its SMS text.

    Placeholders such as [customerName] name fields of the application; the
    template issue adds the language, validation, preview and versions.
    """

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="templates")
    medium = models.CharField(max_length=16, choices=medium_choices)
    subject = models.CharField(max_length=200, blank=True, help_text="Email only.")
    body = models.TextField(help_text="Plain text; for SMS and WhatsApp the whole message.")
    html_body = models.TextField("HTML body", blank=True, help_text="Email only. Optional.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["application", "medium"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "medium"], name="one_template_per_application_medium"
            )
        ]

    def __str__(self) -> str:
        return f"{self.application} {self.get_medium_display()}"

    def clean(self) -> None:
        if not self.application_id or not self.medium:
            return
        if not self.application.media.filter(medium=self.medium).exists():
            raise ValidationError(
                {
                    "medium": (
                        f"Application {self.application.code} does not send "
                        f"{self.get_medium_display()}; add the medium to the application first."
                    )
                }
            )
        if self.medium != "email" and (self.subject or self.html_body):
            raise ValidationError("Only email templates have a subject and an HTML body.")
