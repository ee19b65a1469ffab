"""The media a notification can go out over, as a registry.

A new medium is one class here: its code, its label, and which field types
may hold its recipient address. Later layers (templates, channel backends)
look media up by code through `get_medium`.
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


@register
class SMS(Medium):
    code = "sms"
    label = "SMS"
    recipient_field_types = ("phone",)


@register
class Email(Medium):
    code = "email"
    label = "Email"
    recipient_field_types = ("email",)


@register
class WhatsApp(Medium):
    code = "whatsapp"
    label = "WhatsApp"
    recipient_field_types = ("phone",)
