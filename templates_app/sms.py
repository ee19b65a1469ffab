"""Count an SMS the way operators bill it: in segments, not in characters.

Operators charge per segment, and Indonesian operators (Telkomsel, Indosat,
XL) bill a bank's reminder per segment too, so a template that goes one
character over a limit doubles its cost. The limit depends on the encoding:

* GSM-7 (GSM 03.38) when every character is in its basic table or its
  extension table: 160 septets in a single message, 153 per segment once
  the message is split (the user data header takes the other seven). An
  extension character such as ``€`` is sent as ESC + character, so it
  costs two septets, and the pair is never split across two segments.
* UCS-2 otherwise, e.g. for an emoji or a name such as "Śantoso": 70 UTF-16
  code units in a single message, 67 per segment. An emoji outside the
  Basic Multilingual Plane is a surrogate pair (two units), never split.
"""

from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

GSM7_SINGLE_LIMIT = 160
GSM7_SEGMENT_LIMIT = 153
UCS2_SINGLE_LIMIT = 70
UCS2_SEGMENT_LIMIT = 67

ESCAPE = "\x1b"

# GSM 03.38 basic character set, in code order 0x00-0x7F, one row of 16 per line.
# 0x1B is the escape to the extension table, not a character of the text.
GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# GSM 03.38 extension table: code after ESC -> character. The standard's
# other entries (0x0D, 0x1B) are control codes, not characters of the text.
GSM7_EXTENSION_TABLE = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

GSM7_BASIC_CHARACTERS = frozenset(GSM7_BASIC_TABLE) - {ESCAPE}
GSM7_EXTENSION_CHARACTERS = frozenset(GSM7_EXTENSION_TABLE.values())


@dataclass(frozen=True)
class SmsStats:
    """What one SMS text costs.

    ``units`` are GSM-7 septets or UTF-16 code units, depending on
    ``encoding``; ``per_segment`` is the limit that applied (160, 153, 70 or
    67) and ``remaining`` the units still free in the last segment. The empty
    text has no segment and the whole first one free.
    """

    characters: int
    encoding: str
    units: int
    segments: int
    per_segment: int
    remaining: int

    def as_json(self) -> dict[str, int | str]:
        """The figures the template preview shows (the per-segment limit follows from them)."""
        return {
            "characters": self.characters,
            "encoding": self.encoding,
            "segments": self.segments,
            "units": self.units,
            "remaining": self.remaining,
        }


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` can be sent in GSM-7."""
    return all(
        character in GSM7_BASIC_CHARACTERS or character in GSM7_EXTENSION_CHARACTERS
        for character in text
    )


def gsm7_septets(character: str) -> int:
    """Septets of one GSM-7 character: two for an extension (ESC + code)."""
    return 2 if character in GSM7_EXTENSION_CHARACTERS else 1


def utf16_units(character: str) -> int:
    """UTF-16 code units of one character: two for a surrogate pair (e.g. emoji)."""
    return 2 if ord(character) > 0xFFFF else 1


def sms_stats(text: str) -> SmsStats:
    """Count ``text`` as operators bill it: encoding, units and segments."""
    if is_gsm7(text):
        encoding, single_limit, segment_limit = GSM7, GSM7_SINGLE_LIMIT, GSM7_SEGMENT_LIMIT
        widths = [gsm7_septets(character) for character in text]
    else:
        encoding, single_limit, segment_limit = UCS2, UCS2_SINGLE_LIMIT, UCS2_SEGMENT_LIMIT
        widths = [utf16_units(character) for character in text]

    units = sum(widths)
    if units <= single_limit:
        segments = 1 if text else 0
        per_segment, used_in_last = single_limit, units
    else:
        segments, used_in_last = count_segments(widths, segment_limit)
        per_segment = segment_limit

    return SmsStats(
        characters=len(text),
        encoding=encoding,
        units=units,
        segments=segments,
        per_segment=per_segment,
        remaining=per_segment - used_in_last,
    )


def count_segments(widths: list[int], segment_limit: int) -> tuple[int, int]:
    """Fill segments character by character; return (segments, units in the last).

    A character that does not fit whole in the current segment (an ESC pair
    or a surrogate pair at the boundary) starts the next one, leaving a unit
    unused behind it.
    """
    segments, used = 1, 0
    for width in widths:
        if used + width > segment_limit:
            segments, used = segments + 1, 0
        used += width
    return segments, used
