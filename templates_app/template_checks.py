"""Checking templates: before one is saved, and before the fields they use change.

The admin form's validation and the live preview endpoint both call
`template_check` (through templates_app/previews.py), so what the preview shows
is what saving will accept. The application admin asks
`template_schema_change_problems` (registered in clients.schema_changes) before its
field schema changes.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from clients.media import get_medium
from clients.models import Application
from templates_app.models import ContentTemplate
from templates_app.sms import SmsStats, sms_stats
from templates_app.template_language import (
    CompiledTemplate,
    FieldFormat,
    RenderError,
    TemplateSyntaxError,
    compile_template,
    placeholder_problems,
    prepare,
)

# The template parts and how their values are inserted.
PART_ESCAPES_HTML = {"subject": False, "body": False, "html_body": True}

# Problems listed per template part; a text of thousands of mistakes gets a summary line.
MAX_PROBLEMS_SHOWN = 20


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
        for problem in _shown_problems(placeholder_problems(compiled, fields)):
            check.add_error(part, problem)
    if check.errors:
        return check
    if not application.sample_values:
        check.warnings.append(
            f"{application.code} has no sample values yet: the preview shows empty fields."
        )
    for part, text in parts.items():
        renderer = prepare(text, fields, escape_html=PART_ESCAPES_HTML[part])
        try:
            check.preview[part] = renderer(application.sample_values)
        except RenderError as exc:
            # A sample left over from an older schema; the SMS length cannot be counted without it.
            check.add_error(part, f"The application's sample values cannot be rendered: {exc}")
    if check.errors:
        return check
    MEDIUM_CHECKS.get(medium, _no_medium_rules)(
        check=check, application=application, parts=compiled_parts
    )
    _warn_about_unused_required_fields(check, application, medium, compiled_parts, template_pk)
    return check


def _sms_rules(*, check: TemplateCheck, application: Application, parts) -> None:
    check.sms = stats = sms_stats(check.preview.get("body", ""))
    if stats.segments > application.sms_segment_limit:
        check.add_error(
            "body",
            f"The sample renders to {stats.segments} SMS segments ({stats.encoding}, "
            f"{stats.characters} characters); {application.code} allows at most "
            f"{application.sms_segment_limit}.",
        )
    brand = application.brand_name.strip()
    literal_text = parts["body"].literal_text.lower() if "body" in parts else ""
    if not brand:
        check.warnings.append(
            f"{application.code} has no brand name: Indonesian operators block SMS "
            "that do not name the sender."
        )
    elif brand.lower() not in literal_text:
        check.warnings.append(
            f"The SMS does not contain the brand name {brand!r}: Indonesian operators "
            "block SMS that do not name the sender."
        )


def _email_rules(*, check: TemplateCheck, application: Application, parts) -> None:
    if not check.preview.get("subject", "").strip():
        check.add_error("subject", "An email needs a subject.")


def _whatsapp_rules(*, check: TemplateCheck, application: Application, parts) -> None:
    length = len(check.preview.get("body", ""))
    limit = get_medium("whatsapp").MAX_BODY_CHARACTERS
    if length > limit:
        check.add_error(
            "body", f"The sample renders to {length} characters; WhatsApp allows {limit}."
        )


def _no_medium_rules(*, check: TemplateCheck, application: Application, parts) -> None:
    """A medium with no rules of its own beyond the template language's."""


# The rules each medium's content must follow (clients/media.py declares the media), called
# with the check, the application, and the compiled templates by part; `check.preview` holds
# the parts rendered with the application's sample. They add errors and warnings to `check`.
MEDIUM_CHECKS = {"sms": _sms_rules, "email": _email_rules, "whatsapp": _whatsapp_rules}


def _shown_problems(problems: list[str]) -> list[str]:
    hidden = len(problems) - MAX_PROBLEMS_SHOWN
    if hidden <= 0:
        return problems
    return [*problems[:MAX_PROBLEMS_SHOWN], f"…and {hidden:,} more problems."]


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


def template_schema_change_problems(
    *, application: Application, fields: Mapping[str, FieldFormat]
) -> list[str]:
    """What would break in the application's templates if its fields became `fields`.

    `fields` is the whole new schema (name -> format): a field missing from it
    is removed or renamed. Returns one message per placeholder that works with
    the current schema and would not with the new one, naming the template,
    its part and the placeholder; an empty list means the change is safe.
    """
    current = field_formats(application)
    problems = []
    for template in ContentTemplate.objects.filter(application=application):
        for part in PART_ESCAPES_HTML:
            try:
                compiled = compile_template(getattr(template, part))
            except TemplateSyntaxError:
                continue  # broken before this change, and refused by its own form
            existing = set(placeholder_problems(compiled, current))
            label = f"{template.get_medium_display()} template, {_part_label(part)}"
            new_problems = [
                problem
                for problem in [
                    *placeholder_problems(compiled, fields),
                    *_date_pattern_changes(compiled, current, fields),
                ]
                if problem not in existing
            ]
            problems += [f"{label}: {problem}" for problem in _shown_problems(new_problems)]
    return problems


def _part_label(part: str) -> str:
    return ContentTemplate._meta.get_field(part).verbose_name


def _date_pattern_changes(
    compiled: CompiledTemplate,
    current: Mapping[str, FieldFormat],
    fields: Mapping[str, FieldFormat],
) -> list[str]:
    """Date filters whose field would be read with another pattern than its values were written in.

    Notifications accepted but not yet sent hold their dates in the current
    pattern; the date filter would fail on every one of them.
    """
    problems = []
    for placeholder in compiled.placeholders:
        before, after = current.get(placeholder.field), fields.get(placeholder.field)
        if (
            before is not None
            and after is not None
            and before.type == after.type == "date"
            and before.date_format != after.date_format
            and any(call.name == "date" for call in placeholder.filters)
        ):
            problems.append(
                f"{placeholder.where}: reads {placeholder.field} written as "
                f"{before.date_format}; notifications already accepted in that form could no "
                "longer be formatted."
            )
    return problems
