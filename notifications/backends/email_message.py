"""An email's bytes, built directly: the same bytes Django's EmailMultiAlternatives sends.

Django builds a message as a tree of email.mime objects and serialises it with
the email package's generator, folding and encoding every header on the way:
about half a millisecond of CPU per message, a fifth of a worker's time when it
sends email. For the messages a delivery makes (ASCII headers that fit on a
line, bodies without lines too long for SMTP) the result is always the same
shape, so `message_bytes` writes it out directly: the same headers in the same
order, the same MIME structure (multipart/alternative when there is an HTML
body), the same transfer encodings (7bit for ASCII text, 8bit for UTF-8). For
anything else (a non-ASCII subject or address, a long header or line) it asks
Django, which encodes it. tests/delivery/test_email_message.py compares the two.
"""

import random
import re
import sys
import time
from email.utils import formatdate
from functools import lru_cache

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import sanitize_address

# Longer header lines are folded by the email package: Django builds those.
HEADER_LINE_LIMIT = 76
# Longer body lines make Django encode the part quoted-printable: Django builds those.
BODY_LINE_LIMIT_BYTES = 998
_NEWLINES = re.compile(r"\r\n|\r|\n")
# What may stand in a header as it is: printable ASCII, no encoded-word opener.
_PLAIN_HEADER = re.compile(r"[\x20-\x7e]*")
# An address Django would pass through unchanged (sanitize_address returns it as is).
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))
_PART_HEADERS = {
    (subtype, cte): (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"MIME-Version: 1.0\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
    ).encode()
    for subtype in ("plain", "html")
    for cte in ("7bit", "8bit")
}


def message_bytes(
    *, from_email: str, to: str, subject: str, body: str, html: str, message_id: str
) -> bytes:
    """The message as Django's SMTP backend would send it (its boundary and Date aside)."""
    text = _part(body)
    alternative = _part(html) if html else None
    if (
        text is None
        or (html and alternative is None)
        or not _plain_headers(from_email, to, subject, message_id)
    ):
        return _django_message_bytes(from_email, to, subject, body, html, message_id)
    headers = (
        f"Subject: {subject}\r\nFrom: {from_email}\r\nTo: {to}\r\n"
        f"Date: {_date(int(time.time()), settings.EMAIL_USE_LOCALTIME)}\r\n"
        f"Message-ID: {message_id}\r\n\r\n"
    ).encode()
    if alternative is None:
        return _PART_HEADERS["plain", text[0]][:-2] + headers + text[1]
    boundary = _boundary(text[1], alternative[1])
    return b"".join(
        (
            b'Content-Type: multipart/alternative;\r\n boundary="%s"\r\nMIME-Version: 1.0\r\n'
            % boundary,
            headers,
            b"--%s\r\n" % boundary,
            _PART_HEADERS["plain", text[0]],
            text[1],
            b"\r\n--%s\r\n" % boundary,
            _PART_HEADERS["html", alternative[0]],
            alternative[1],
            b"\r\n--%s--\r\n" % boundary,
        )
    )


@lru_cache(maxsize=4)
def _date(second: int, localtime: bool) -> str:
    """The Date header of the current second (formatting it took a twentieth of a send)."""
    return formatdate(second, localtime=localtime)


def envelope_address(address: str) -> str:
    """The address as Django's SMTP backend gives it to smtplib (punycode, encoded names)."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return address
    return _sanitized(address, settings.DEFAULT_CHARSET)


@lru_cache(maxsize=256)
def _sanitized(address: str, charset: str) -> str:
    # The sender's address, mostly ("Name <address>"): the same for every message.
    return sanitize_address(address, charset)


def _part(text: str) -> tuple[str, bytes] | None:
    """A text part's transfer encoding and its bytes with CRLF line ends, or None when a
    line is too long for SMTP (Django encodes that part quoted-printable)."""
    encoded = "\r\n".join(_NEWLINES.split(text)).encode("utf-8", "surrogateescape")
    if len(encoded) > BODY_LINE_LIMIT_BYTES and any(
        len(line) > BODY_LINE_LIMIT_BYTES for line in encoded.split(b"\r\n")
    ):
        return None
    return ("7bit" if encoded.isascii() else "8bit"), encoded


def _plain_headers(from_email: str, to: str, subject: str, message_id: str) -> bool:
    for name, value in (
        ("Subject", subject),
        ("From", from_email),
        ("To", to),
        ("Message-ID", message_id),
    ):
        if (
            len(name) + 2 + len(value) > HEADER_LINE_LIMIT
            or "=?" in value
            or not _PLAIN_HEADER.fullmatch(value)
            or value != value.strip()
        ):
            return False
    return "," not in to and "<" not in to


def _boundary(*texts: bytes) -> bytes:
    """A boundary of the email package's form, found in none of the parts."""
    while True:
        token = b"%0*d" % (_BOUNDARY_DIGITS, random.randrange(sys.maxsize))  # noqa: S311
        boundary = b"===============" + token + b"=="
        if not any(b"--" + boundary in text for text in texts):
            return boundary


def _django_message_bytes(from_email, to, subject, body, html, message_id) -> bytes:
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email=from_email,
        to=[to],
        headers={"Message-ID": message_id},
    )
    if html:
        message.attach_alternative(html, "text/html")
    return message.message().as_bytes(linesep="\r\n")
