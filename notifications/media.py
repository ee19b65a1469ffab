"""The media a notification can go out over, as a registry.

A new medium is one class here: its code, its label, which field types may
hold its recipient address, which parts its content template has, and the
rules its content must follow. Other layers look media up with `get_medium`.
"""

from typing import ClassVar

MEDIA: dict[str, type["Medium"]] = {}


def register(medium_class: type["Medium"]) -> type["Medium"]:
    if medium_class.code in MEDIA:
        raise ValueError(f"Medium {medium_class.code!r} is registered twice.")
    MEDIA[medium_class.code] = medium_class
    return medium_class


def get_medium(code: str) -> type["Medium"]:
    """Return the medium class for `code`; raises KeyError for an unknown code."""
    return MEDIA[code]


def medium_choices() -> list[tuple[str, str]]:
    """Choices for model fields; a callable, so adding a medium needs no migration."""
    return [(medium.code, medium.label) for medium in MEDIA.values()]


class Medium:
    code: ClassVar[str]
    label: ClassVar[str]
    # Field types (clients.models.FieldType values) that can hold the address.
    recipient_field_types: ClassVar[tuple[str, ...]]
    # The parts of its content template (ContentTemplate fields).
    template_parts: ClassVar[tuple[str, ...]] = ("body",)
    # Whether the client's quiet hours hold it (a phone buzzing at night).
    held_in_quiet_hours: ClassVar[bool] = False

    @classmethod
    def check_template(cls, *, check, application, parts) -> None:
        """Add this medium's errors and warnings to `check` (a TemplateCheck).

        `check.preview` holds the parts rendered with the application's sample;
        `parts` the compiled templates, by part.
        """


@register
class SMS(Medium):
    code = "sms"
    label = "SMS"
    recipient_field_types = ("phone",)
    held_in_quiet_hours = True

    @classmethod
    def check_template(cls, *, check, application, parts) -> None:
        from templates_app.sms import sms_stats

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


@register
class Email(Medium):
    code = "email"
    label = "Email"
    recipient_field_types = ("email",)
    template_parts = ("subject", "body", "html_body")

    @classmethod
    def check_template(cls, *, check, application, parts) -> None:
        if not check.preview.get("subject", "").strip():
            check.add_error("subject", "An email needs a subject.")


@register
class WhatsApp(Medium):
    code = "whatsapp"
    label = "WhatsApp"
    recipient_field_types = ("phone",)
    template_parts = ("body", "provider_template_name")
    held_in_quiet_hours = True
    # The WhatsApp Business API refuses template bodies longer than this.
    MAX_BODY_CHARACTERS = 1024

    @classmethod
    def check_template(cls, *, check, application, parts) -> None:
        length = len(check.preview.get("body", ""))
        if length > cls.MAX_BODY_CHARACTERS:
            check.add_error(
                "body",
                f"The sample renders to {length} characters; WhatsApp allows "
                f"{cls.MAX_BODY_CHARACTERS}.",
            )
