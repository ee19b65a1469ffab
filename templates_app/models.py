from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from clients.media import MEDIA, Medium, get_medium, medium_choices
from clients.models import Application


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
    provider_template_name = models.CharField(
        max_length=100,
        blank=True,
        help_text="WhatsApp only: the provider's approved template name, where it requires one.",
    )
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
        problems = parts_of_other_media(self)
        if problems:
            raise ValidationError(problems)


# The parts of a template that versions keep.
CONTENT_FIELDS = ("subject", "body", "html_body", "provider_template_name")
# The parts as errors name them.
PART_PHRASES = {
    "subject": "a subject",
    "body": "a body",
    "html_body": "an HTML body",
    "provider_template_name": "a provider template name",
}


def parts_of_other_media(template: ContentTemplate) -> list[str]:
    """One message for each group of filled parts that the template's medium does not have.

    Which medium has which part is its declaration (`Medium.template_parts`); the
    message names every part the same media have, e.g. "Only email templates have
    a subject and an HTML body."
    """
    own = get_medium(template.medium).template_parts
    messages = []
    for part in CONTENT_FIELDS:
        if part in own or not getattr(template, part):
            continue
        owners = _media_having(part)
        parts = [p for p in CONTENT_FIELDS if p not in own and _media_having(p) == owners]
        message = (
            f"Only {' or '.join(_in_sentence(medium.label) for medium in owners)} templates "
            f"have {' and '.join(PART_PHRASES[p] for p in parts)}."
        )
        if message not in messages:
            messages.append(message)
    return messages


def _media_having(part: str) -> list[type[Medium]]:
    return [medium for medium in MEDIA.values() if part in medium.template_parts]


def _in_sentence(label: str) -> str:
    """A medium's label inside a sentence: "Email" as "email"; "SMS" and "WhatsApp" as they are."""
    return label if label[1:] != label[1:].lower() else label.lower()


class TemplateVersion(models.Model):
    """An immutable copy of a template's content as it was saved.

    A delivery records the version it was rendered with, so support can tell
    what exactly a customer was sent after the template has changed.
    """

    template = models.ForeignKey(ContentTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    html_body = models.TextField("HTML body", blank=True)
    provider_template_name = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    change_summary = models.CharField(max_length=200)

    class Meta:
        ordering = ["template", "-number"]
        get_latest_by = "number"
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="unique_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"

    def content(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in CONTENT_FIELDS}
