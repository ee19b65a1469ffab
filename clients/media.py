"""The media a notification can go out over, as a registry.

A new medium is one class here: its code, its label, which field types may
hold its recipient address, which parts its content template has, and whether
quiet hours hold it. Other apps look media up with `get_medium`; the rules its
content must follow are checked with its templates (templates_app/template_checks.py).
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


@register
class SMS(Medium):
    code = "sms"
    label = "SMS"
    recipient_field_types = ("phone",)
    held_in_quiet_hours = True


@register
class Email(Medium):
    code = "email"
    label = "Email"
    recipient_field_types = ("email",)
    template_parts = ("subject", "body", "html_body")


@register
class WhatsApp(Medium):
    code = "whatsapp"
    label = "WhatsApp"
    recipient_field_types = ("phone",)
    template_parts = ("body", "provider_template_name")
    held_in_quiet_hours = True
    # The WhatsApp Business API refuses template bodies longer than this.
    MAX_BODY_CHARACTERS = 1024
