"""An email's bytes as the SMTP path writes them: the bytes Django's EmailMultiAlternatives
makes, its random MIME boundary and the Date aside, whatever the text."""

import email
import email.policy
import re

import pytest
from django.core.mail import EmailMultiAlternatives

from notifications.backends.email_message import envelope_address, message_bytes

FROM = "Kokatto <no-reply@kokatto.local>"
MESSAGE_ID = "<kokatto-delivery-7@kokatto.local>"
BODY = "Dear Mr. John Doe,\n\nyou owe Rp 1.230.000 due on 9 September 2015.\n\nPT Bank Demo"
HTML = "<p>Dear Mr. <b>John Doe</b>,</p>\n<p>you owe Rp 1.230.000.</p>"


def djangos_bytes(*, subject, body, html, to="john@example.co.id", from_email=FROM) -> bytes:
    message = EmailMultiAlternatives(
        subject, body, from_email, [to], headers={"Message-ID": MESSAGE_ID}
    )
    if html:
        message.attach_alternative(html, "text/html")
    return message.message().as_bytes(linesep="\r\n")


def without_boundary_and_date(raw: bytes) -> bytes:
    raw = re.sub(rb"===============\d+==", b"BOUNDARY", raw)
    return re.sub(rb"\r\nDate: [^\r]+\r\n", b"\r\nDate: DATE\r\n", raw)


CASES = {
    "text and html": ("Payment reminder: Rp 1.230.000", BODY, HTML),
    "text only": ("Payment reminder", BODY, ""),
    "utf-8 text": ("Tagihan", "Yth. Budi Śantoso, Rp 1.230.000 (±)", "<p>Śantoso</p>"),
    "utf-8 subject": ("Tagihan untuk Budi Śantoso — jatuh tempo", BODY, HTML),
    "ends with newlines": ("S", "line\n\n", "<p>x</p>\n"),
    "CRLF and CR line ends": ("S", "a\r\nb\rc", "x\r\ny"),
    "empty": ("", "", ""),
    "subject at the line's limit": ("x" * 67, BODY, HTML),
    "subject past it": ("x" * 68 + " y" * 10, BODY, HTML),
    "encoded-word look-alike": ("=?utf-8?q?hi?=", BODY, ""),
    "line of 998 bytes": ("S", "a" * 998, ""),
    "line of 999 bytes": ("S", "a" * 999, "b" * 2000),
    "long utf-8 line": ("S", "é" * 500, ""),
    "boundary-like text": ("S", "--===============1234567890123456789==\n", HTML),
}


@pytest.mark.parametrize("subject, body, html", CASES.values(), ids=CASES.keys())
def test_the_bytes_are_djangos(subject, body, html):
    ours = message_bytes(
        from_email=FROM,
        to="john@example.co.id",
        subject=subject,
        body=body,
        html=html,
        message_id=MESSAGE_ID,
    )

    theirs = djangos_bytes(subject=subject, body=body, html=html)
    assert without_boundary_and_date(ours) == without_boundary_and_date(theirs)


@pytest.mark.parametrize(
    "to", ["Budi Śantoso <budi@example.co.id>", "budi@bücher.example", "Jo <jo@example.co.id>"]
)
def test_other_addresses_are_written_as_django_writes_them(to):
    ours = message_bytes(
        from_email=FROM, to=to, subject="S", body=BODY, html="", message_id=MESSAGE_ID
    )

    assert without_boundary_and_date(ours) == without_boundary_and_date(
        djangos_bytes(subject="S", body=BODY, html="", to=to)
    )


def test_a_message_parses_as_multipart_alternative_with_every_header():
    raw = message_bytes(
        from_email=FROM,
        to="john@example.co.id",
        subject="Payment reminder",
        body=BODY,
        html=HTML,
        message_id=MESSAGE_ID,
    )

    message = email.message_from_bytes(raw, policy=email.policy.SMTP)
    assert message.get_content_type() == "multipart/alternative"
    assert (message["From"], message["To"], message["Subject"], message["Message-ID"]) == (
        FROM,
        "john@example.co.id",
        "Payment reminder",
        MESSAGE_ID,
    )
    assert message["Date"].datetime is not None
    text, html = message.iter_parts()
    assert text.get_content().replace("\r\n", "\n") == BODY
    assert html.get_content().replace("\r\n", "\n") == HTML


def test_the_envelope_has_the_bare_address_and_punycode_for_an_international_domain():
    assert envelope_address("john@example.co.id") == "john@example.co.id"
    assert envelope_address(FROM) == FROM
    assert envelope_address("budi@bücher.example") == "budi@xn--bcher-kva.example"
