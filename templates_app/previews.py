"""The preview of a template as typed: what saving would store, check and render.

The admin form's validation and the live preview endpoint both call
`template_preview`, so the preview shows what saving will accept, cleaned the
way saving stores it.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from django.utils.text import normalize_newlines

from clients.models import Application
from templates_app.sanitizing import sanitize_html
from templates_app.template_checks import PART_ESCAPES_HTML, TemplateCheck, template_check


@dataclass(frozen=True)
class TemplatePreview:
    parts: dict[str, str]  # as saving stores them, by part
    check: TemplateCheck  # empty until an application and a medium are chosen

    def as_json(self) -> dict:
        """The answer of the live preview endpoint (static/templates_app/preview.js shows it)."""
        return {
            "valid": self.check.is_valid,
            "errors": self.check.errors,
            "warnings": self.check.warnings,
            "preview": self.check.preview,
            "sms": self.check.sms and self.check.sms.as_json(),
        }


def template_part_cleaned(part: str, text: str) -> str:
    """A template part as it is stored.

    Browsers post line breaks as CRLF, and an SMS would pay a character for every
    \\r; the HTML part loses what an email may not carry (templates_app/sanitizing.py).
    """
    text = normalize_newlines(text or "")
    return sanitize_html(text) if PART_ESCAPES_HTML[part] else text


def template_preview(
    *,
    application: Application | None,
    medium: str,
    typed: Mapping[str, str],
    template_pk: int | None = None,
) -> TemplatePreview:
    """Clean the typed parts ("subject", "body", "html_body"; a missing one is empty),
    then check and render them with the application's sample.

    `template_pk` is the template being edited, if saved: its other media's
    templates count towards the fields in use, its own saved text does not.
    """
    parts = {part: template_part_cleaned(part, typed.get(part, "")) for part in PART_ESCAPES_HTML}
    if application is None or not medium:
        return TemplatePreview(parts=parts, check=TemplateCheck())
    check = template_check(
        application=application, medium=medium, parts=parts, template_pk=template_pk
    )
    return TemplatePreview(parts=parts, check=check)
