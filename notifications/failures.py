"""What client staff are told of a failed send: a short category, never the detail.

A delivery's last error, a callback's last response and the status history hold
the full detail for operators: library messages, host names, addresses, ports,
a provider's own words. Shown to client staff, that detail would make the callback
URL a port scanner ("connection refused" on one port, "HTTP 400" on another) and
leak the platform's internals. Client staff see `failure_category(text)` instead:
one of a fixed set of short phrases, and "failed" for anything not recognised.

The category is read from the stored text, whose kind comes first (every writer
puts it there: "Timeout: …", "HTTP 503: …", "refused: address not public: …"),
rather than stored in a column of its own: so rows written before this existed
are shown the same way, and a text nobody foresaw is never shown at all.
"""

import re

from clients.outbound import ADDRESS_NOT_PUBLIC, HTTP_NOT_ALLOWED, INVALID_URL

FAILED = "failed"

# (category, how the stored text starts). First match wins. HTTP and SMTP answers are
# shown with their status; "ConnectionError: …" and the like are older rows' wording.
_KINDS = [
    (ADDRESS_NOT_PUBLIC, re.escape(ADDRESS_NOT_PUBLIC)),
    (HTTP_NOT_ALLOWED, re.escape(HTTP_NOT_ALLOWED)),
    (INVALID_URL, rf"{re.escape(INVALID_URL)}|Invalid URL|ConnectionError: Failed to parse"),
    ("timeout", r"Timeout|Connect timeout|ConnectTimeout"),
    ("connection refused", r"Connection refused|ConnectionRefusedError|.*Connection refused"),
    ("host name not found", r"Name not found|ConnectionError: .*Failed to resolve"),
    ("TLS error", r"TLS error|SSLError|ConnectionError: .*SSL"),
    ("connection failed", r"Connection failed|ConnectionError|ConnectionResetError|SMTPServer"),
    ("provider rate limit reached", r"RateLimited"),
    ("template could not be rendered", r"RENDER_ERROR"),
    ("no template", r".{1,300} has no \w+ template\.$"),
    ("expired", r"expiresAt passed"),
    ("secret key unreadable", r"InvalidToken"),
    ("sent, answer unreadable", r"unreadable answer"),
]
_KIND_PATTERNS = [(category, re.compile(pattern)) for category, pattern in _KINDS]
_STATUS = re.compile(r"(HTTP|SMTP) \d{3}")
# A callback's answer whose body was not read: " (answer over 4096 bytes, not read)".
_ANSWER_CUT = {" (answer over ": ", answer too large", " (answer not w": ", answer cut off"}


def failure_category(text: str) -> str:
    """The short category of a stored error or callback answer ("" for none)."""
    if not text:
        return ""
    status = _STATUS.match(text)
    if status:
        return status[0] + _ANSWER_CUT.get(text[status.end() : status.end() + 14], "")
    for category, pattern in _KIND_PATTERNS:
        if pattern.match(text):
            return category
    return FAILED


# The status-history details that quote a send's error (notifications/dispatch.py).
_DETAILS_WITH_ERROR = [
    re.compile(pattern, re.DOTALL)
    for pattern in (
        r"(?P<head>attempt \d+ by .+? failed \()(?P<error>.*)"
        r"(?P<tail>\); (retry at \d\d:\d\d:\d\d|a retry would come after expiresAt).*)",
        r"(?P<head>failed after \d+ attempt\(s\), last by .+?: )(?P<error>.*)(?P<tail>)",
        r"(?P<head>failed: )(?P<error>.*)(?P<tail>)",
    )
]


def detail_for_client(detail: str) -> str:
    """A status-history detail with the error it quotes replaced by its category."""
    for pattern in _DETAILS_WITH_ERROR:
        match = pattern.fullmatch(detail)
        if match:
            return f"{match['head']}{failure_category(match['error'])}{match['tail']}"
    return detail
