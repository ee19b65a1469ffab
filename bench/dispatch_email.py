"""The email mode of bench/dispatch.py (`--medium email`): an SMTP sink and its ceiling.

The sink is aiosmtpd's SMTP server on loopback, in a process of its own (forked
by bench/dispatch.py's Sink, as the HTTP sink is). It accepts every message,
counts messages and connections, and records when each Message-ID first
arrives: the pipeline's Message-ID is `<kokatto-delivery-ID@domain>`, the same
for every send of a delivery, so a distinct Message-ID is a distinct delivery
and a second arrival of one is a duplicate.

The ceiling: this process sends the same message over one kept-alive
`smtplib` connection, as fast as the sink takes it.
"""

import asyncio
import re
import smtplib
import time

from aiosmtpd.smtp import SMTP
from support import serve_until_stopped

HOST = "127.0.0.1"
RECIPIENT_EMAIL = "john.doe@example.co.id"
# The Message-ID's local part: the delivery's idempotency key (kokatto-delivery-ID).
MESSAGE_ID = re.compile(rb"^message-id:[ \t]*<([^@>]+)@", re.IGNORECASE | re.MULTILINE)


class _EmailSinkHandler:
    def __init__(self, state):
        self.state = state

    async def handle_DATA(self, server, session, envelope):
        content = envelope.content
        head = content[: content.find(b"\r\n\r\n")]
        found = MESSAGE_ID.search(head)
        key = found.group(1).decode() if found else None
        self.state.record(key, len(content))
        return "250 2.0.0 Ok: queued"


class _CountingSMTP(SMTP):
    """aiosmtpd's server protocol, counting the connections it is made for."""

    def __init__(self, handler, state):
        super().__init__(handler, hostname="sink.bench.local", ident="kokatto bench sink")
        self.state = state

    def connection_made(self, transport):
        self.state.connections += 1
        super().connection_made(transport)


async def smtp_sink(state, control) -> None:
    """Serve SMTP on loopback until told to stop; answer "report" and "reset" on `control`."""
    loop = asyncio.get_running_loop()
    handler = _EmailSinkHandler(state)
    server = await loop.create_server(lambda: _CountingSMTP(handler, state), HOST, 0, backlog=1024)
    await serve_until_stopped(server, state, control)


def demo_email(client_id: str, app_code: str, params: dict) -> tuple[str, str, str]:
    """The subject, text and HTML the pipeline renders for the bench's email deliveries."""
    from clients.models import Application
    from templates_app.models import ContentTemplate
    from templates_app.template_checks import PART_ESCAPES_HTML, field_formats
    from templates_app.template_language import prepare

    application = Application.objects.get(client__client_id=client_id, code=app_code)
    template = ContentTemplate.objects.get(application=application, medium="email")
    formats = field_formats(application)
    return tuple(
        prepare(getattr(template, part), formats, escape_html=PART_ESCAPES_HTML[part])(params)
        for part in ("subject", "body", "html_body")
    )


def ceiling_message(from_email: str, subject: str, body: str, html: str) -> bytes:
    """The message the ceiling sends: what Django's SMTP backend would send for a delivery."""
    from django.core.mail import EmailMultiAlternatives

    message = EmailMultiAlternatives(
        subject, body, from_email, [RECIPIENT_EMAIL], headers={"Message-ID": "<MESSAGE-ID>"}
    )
    message.attach_alternative(html, "text/html")
    return message.message().as_bytes(linesep="\r\n")


def ceiling_smtplib(port: int, envelope_from: str, message: bytes, count: int) -> tuple[float, int]:
    """Messages/second over one kept-alive smtplib connection, and messages refused."""
    client = smtplib.SMTP(HOST, port, timeout=10)
    client.ehlo()
    refused = 0
    started = time.perf_counter()
    for number in range(count):
        data = message.replace(b"<MESSAGE-ID>", b"<kokatto-ceiling-%d@kokatto.local>" % number)
        try:
            client.sendmail(envelope_from, [RECIPIENT_EMAIL], data)
        except smtplib.SMTPException:
            refused += 1
    elapsed = time.perf_counter() - started
    client.quit()
    return count / elapsed, refused


def print_email_verdict(total: int, sink: dict, rate: float, ceiling_rate: float) -> bool:
    """The email mode's own lines: exactly one message per delivery, and the target."""
    arrivals, duplicates = sink["arrivals"], sum(sink["duplicates"].values())
    exactly_once = (
        sink["count"] == total
        and len(arrivals) == total
        and not duplicates
        and not sink["without_key"]
    )
    print(
        f"email sink: {sink['count']} messages for {total} deliveries on "
        f"{sink['connections']} SMTP connections, {len(arrivals)} distinct Message-IDs, "
        f"{duplicates} duplicate Message-IDs, {sink['without_key']} without one: "
        f"exactly one message per delivery: {'yes' if exactly_once else 'NO'}"
    )
    ratio = rate / ceiling_rate
    print(
        f"email target (≥ 0.7 x the one-connection smtplib ceiling, {0.7 * ceiling_rate:.0f}"
        f" messages/s here): {'met' if ratio >= 0.7 else 'NOT met'} ({ratio:.3f}x)"
    )
    return exactly_once
