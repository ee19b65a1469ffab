"""Checking a template before it is saved, and rendering its preview: one code path.

The admin form's validation and the live preview endpoint both call
`template_check`, so what the preview shows is what saving will accept.
"""

from dataclasses import dataclass, field

from clients.models import Application
from notifications.media import get_medium
from templates_app.models import ContentTemplate
from templates_app.rendering import (
    FieldFormat,
    TemplateSyntaxError,
    compile_template,
    placeholder_problems,
    prepare,
)
from templates_app.sms import SmsStats

# The template parts and how their values are inserted.
PART_ESCAPES_HTML = {"subject": False, "body": False, "html_body": True}


@dataclass
class TemplateCheck:
    errors: dict[str, list[str]] = field(default_factory=dict)  # by template part
    warnings: list[str] = field(default_factory=list)
    preview: dict[str, str] = field(default_factory=dict)  # rendered sample, by part
    sms: SmsStats | None = None

    @property
    def is_valid(self) -> bool:
        return not self.errors

    def add_error(self, part: str, message: str) -> None:
        self.errors.setdefault(part, []).append(message)


def field_formats(application: Application) -> dict[str, FieldFormat]:
    return {
        spec.name: FieldFormat(spec.type, spec.date_format) for spec in application.fields.all()
    }


def template_check(
    *, application: Application, medium: str, parts: dict[str, str], template_pk: int | None = None
) -> TemplateCheck:
    """Parse, check and render a template's parts against its application.

    `parts` maps "subject", "body" and "html_body" to their text. Errors name
    the placeholder and its position; warnings do not block saving.
    """
    check = TemplateCheck()
    fields = field_formats(application)
    compiled_parts = {}
    for part, text in parts.items():
        try:
            compiled = compile_template(text)
        except TemplateSyntaxError as exc:
            check.add_error(part, str(exc))
            continue
        compiled_parts[part] = compiled
        for problem in placeholder_problems(compiled, fields):
            check.add_error(part, problem)
    if check.errors:
        return check
    if not application.sample_values:
        check.warnings.append(
            f"{application.code} has no sample values yet: the preview shows empty fields."
        )
    for part, text in parts.items():
        renderer = prepare(text, fields, escape_html=PART_ESCAPES_HTML[part])
        check.preview[part] = renderer(application.sample_values)
    get_medium(medium).check_template(check=check, application=application, parts=compiled_parts)
    _warn_about_unused_required_fields(check, application, medium, compiled_parts, template_pk)
    return check


def _warn_about_unused_required_fields(check, application, medium, compiled_parts, template_pk):
    used = {p.field for compiled in compiled_parts.values() for p in compiled.placeholders}
    others = ContentTemplate.objects.filter(application=application).exclude(medium=medium)
    if template_pk:
        others = others.exclude(pk=template_pk)
    for other in others:
        for text in (other.subject, other.body, other.html_body):
            try:
                used |= {p.field for p in compile_template(text).placeholders}
            except TemplateSyntaxError:
                continue
    recipients = {
        m.recipient_field.name for m in application.media.select_related("recipient_field")
    }
    unused = [
        spec.name
        for spec in application.fields.all()
        if spec.required and spec.name not in used and spec.name not in recipients
    ]
    if unused:
        check.warnings.append(
            f"No template of {application.code} uses the required field(s) {', '.join(unused)}."
        )
