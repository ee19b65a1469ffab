"""Property-based fuzzing of /notif from the platform's own OpenAPI description.

Schemathesis turns /api/schema/ into Hypothesis strategies of requests (valid
ones, and ones that break the schema on purpose); each test here then signs
some correctly (as client 8002, at the present time), forges or stales others,
slips in hostile strings (control characters, NUL, non-characters, lone
surrogates, values around and past the limits), gives a parameter twice, and
sends the result over GET, form POST or JSON POST, asking for JSON or XML.
Whatever was sent, the answer must not be a 5xx, must parse (JSON as strict
UTF-8, XML with expat and libxml2), and must match the published schema for
its status and media type (schemathesis' own response checks).

The requests go through Django's test handler, in the test's transaction, so
signed creates really reach the database (PostgreSQL refuses NUL in text, and
the column widths are real there).

Size: KOKATTO_FUZZ_EXAMPLES requests per transport (default 300, about 15 s
in all); setting it also makes the run random instead of repeatable, e.g.
KOKATTO_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/api/test_fuzz.py
"""

import json
import os
import time
from collections import Counter
from urllib.parse import quote
from xml.etree import ElementTree

import lxml.etree
import pytest
import schemathesis
from django.test.client import ClientHandler
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.test import Client as WsgiClient

from clients.models import Client
from clients.signing import sign
from tests.api.conftest import SECRET_8002, demo_fields

EXAMPLES = int(os.environ.get("KOKATTO_FUZZ_EXAMPLES", "600"))
# A CI run repeats the same examples; a long run explores new ones each time.
REPEATABLE = "KOKATTO_FUZZ_EXAMPLES" not in os.environ
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schemathesis.deserializer("application/xml")
def xml_answer(ctx, response) -> dict:
    """An XML answer in the shape its schema describes; raises unless both parsers read it."""
    lxml.etree.fromstring(response.content, lxml.etree.XMLParser(recover=False))
    root = ElementTree.fromstring(response.content)
    if root.tag != "response":
        raise ValueError(f"root element <{root.tag}>, not <response>")
    body = {}
    for child in root:
        if child.tag == "errors":
            body["errors"] = [{"field": e.get("field"), "message": e.text or ""} for e in child]
        elif child.tag == "deliveries":
            body["deliveries"] = [{part.tag: part.text or "" for part in d} for d in child]
        else:
            body[child.tag] = child.text or ""
    return body


class DjangoTestApp:
    """Django's test-client handler as a WSGI application (requests run in the test's
    transaction), for Werkzeug's client, whose responses schemathesis checks."""

    def __init__(self):
        self.handler = ClientHandler(enforce_csrf_checks=False)

    def __call__(self, environ, start_response):
        response = self.handler(environ)
        start_response(f"{response.status_code} {response.reason_phrase}", [*response.items()])
        return [response.content]


# --- hostile strings -------------------------------------------------------------------

NON_CHARACTERS = ["\ufffe", "\uffff", "\ufdd0", "\ufdef", "\U0001fffe", "\U0010ffff"]
# One surrogate between other characters: a pair would decode as one character.
LONE_SURROGATE = st.builds(
    "{}{}{}".format, st.text(max_size=3), st.characters(categories=["Cs"]), st.just("R")
)
HOSTILE_TEXT = st.one_of(
    st.text(st.characters(max_codepoint=0x9F), max_size=20),  # C0, DEL, C1; NUL among them
    st.sampled_from(["\x00", "R-1\x00", "\x00R-1", "ABC\x00"]),
    LONE_SURROGATE,
    st.text(st.characters(categories=["Cs", "Co", "Cn", "Cc", "Cf"]), max_size=20),
    st.text(st.sampled_from(NON_CHARACTERS), min_size=1, max_size=5),
    st.text(max_size=40),
    # Around the parameter limit (API_MAX_PARAMETER_CHARS, 4096) and past the body's (64 KiB).
    st.sampled_from([100, 101, 4095, 4096, 4097, 70_000]).map(lambda n: "x" * n),
)


def wire(text: str) -> str:
    """Percent-encoded UTF-8; a lone surrogate goes out as the bytes it would be
    (invalid UTF-8), as a careless client would send it."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def json_text(pairs: list) -> str:
    """A JSON object of `pairs`, written by hand so that a name can be given twice; lone
    surrogates become \\udXXX escapes (ensure_ascii)."""
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"


# --- one request ---------------------------------------------------------------------

MEDIA_TYPES = {"form": "application/x-www-form-urlencoded", "json": "application/json"}


@st.composite
def variants(draw, generated: dict, transport: str):
    """One request made of the generated parameters: (method, query pairs, body bytes or
    None, content type, headers)."""
    pairs = [(str(name), _text(value, transport)) for name, value in generated.items()]
    if draw(st.booleans()):
        pairs = _demo_notification(draw, pairs)
    pairs = _hostile(draw, pairs)
    pairs = _signed(draw, pairs)
    body_pairs, query_pairs = (pairs, []) if transport != "get" else ([], pairs)
    if draw(st.integers(0, 9)) == 0 and pairs:  # a parameter given twice
        name, value = draw(st.sampled_from(pairs))
        again = draw(st.sampled_from([value, "1"]))
        (query_pairs if transport == "get" or draw(st.booleans()) else body_pairs).append(
            (name, again)
        )
    headers = {}
    accept = draw(st.sampled_from([None, "application/xml", "text/xml", "application/json"]))
    if accept:
        headers["Accept"] = accept
    request_id = draw(st.sampled_from([None, "req-1", "r" * 100, "caf\xe9", "a\x7fb", "a b"]))
    if request_id:
        headers["X-Request-ID"] = request_id
    if transport == "get":
        return "GET", query_pairs, None, None, headers
    if transport == "json":
        body = json_text(body_pairs).encode("ascii")
    else:
        body = "&".join(f"{wire(k)}={wire(str(v))}" for k, v in body_pairs).encode("ascii")
    if draw(st.integers(0, 19)) == 0:  # bytes that are no body at all
        body = draw(st.binary(max_size=200))
    return "POST", query_pairs, body, MEDIA_TYPES[transport], headers


def _text(value, transport: str):
    # JSON may carry whole numbers; everything else travels as text.
    if transport == "json" and isinstance(value, int) and not isinstance(value, bool):
        return value
    return value if isinstance(value, str) else json.dumps(value)


def _demo_notification(draw, pairs: list) -> list:
    """The generated pairs over a valid request of the demo application: a schema knows
    formats, not which appType, fields and references exist."""
    demo = {
        **demo_fields(reference=draw(st.sampled_from(["R-1", "R-2", "R-3"]))),
        "operation": draw(st.sampled_from(["create", "create", "status", "cancel"])),
    }
    generated = dict(pairs)
    kept = draw(st.sets(st.sampled_from(sorted(generated)), max_size=2)) if generated else set()
    return list({**demo, **{name: generated[name] for name in kept}}.items())


def _hostile(draw, pairs: list) -> list:
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from([n for n, _ in pairs] + ["customerName", "x"]))
        where = draw(st.sampled_from(["value", "name"]))
        hostile = draw(HOSTILE_TEXT)
        pairs = [p for p in pairs if p[0] != name]
        pairs.append((hostile, "1") if where == "name" else (name, hostile))
    return pairs


def _signed(draw, pairs: list) -> list:
    how = draw(st.sampled_from(["as generated", "signed", "signed", "stale", "forged"]))
    if how == "as generated":
        return pairs
    parameters = dict(pairs)
    parameters.pop("signature", None)
    parameters["clientId"] = "8002"
    age = 3600 if how == "stale" else 0
    parameters["timestamp"] = str(int(time.time()) - age)
    try:
        parameters["signature"] = sign(
            {k: str(v) for k, v in parameters.items()}, SECRET_8002 if how != "forged" else "x"
        )
    except UnicodeEncodeError:  # a lone surrogate cannot be signed: as a client would fail
        parameters["signature"] = "0" * 64
    return list(parameters.items())


# --- the tests -------------------------------------------------------------------------


@pytest.fixture
def published(client):
    response = client.get(
        "/api/schema/", HTTP_HOST="127.0.0.1", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )
    return schemathesis.openapi.from_dict(response.json())


@pytest.fixture
def client_8002_unthrottled(api):
    # Thousands of signed requests in a minute are the point here, not the rate limit.
    Client.objects.filter(client_id="8002").update(api_rate_per_minute=10_000_000)


def test_every_generated_request_gets_a_well_formed_answer_that_matches_the_schema(
    published, client_8002_unthrottled
):
    get = published["/notif"]["GET"]
    # What the answers to the POSTs are checked against (415 is a POST's alone).
    answered = {
        "get": None,
        "form": published["/notif"]["POST"].Case(media_type=MEDIA_TYPES["form"]),
        "json": published["/notif"]["POST"].Case(media_type=MEDIA_TYPES["json"]),
    }
    http = WsgiClient(DjangoTestApp())
    statuses = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=REPEATABLE,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        # Valid parameters twice as often as ones that break the schema on purpose.
        case=st.one_of(
            get.as_strategy(generation_mode=GenerationMode.POSITIVE),
            get.as_strategy(generation_mode=GenerationMode.POSITIVE),
            get.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        ),
        data=st.data(),
    )
    def fuzz(case, data):
        # Each generated set of parameters goes out three ways, each mutated on its own.
        for transport, answer_case in answered.items():
            method, query_pairs, body, content_type, headers = data.draw(
                variants(case.query or {}, transport)
            )
            response = http.open(
                "/notif",
                base_url="http://127.0.0.1",
                method=method,
                query_string="&".join(f"{wire(k)}={wire(str(v))}" for k, v in query_pairs),
                data=body,
                content_type=content_type,
                headers=headers,
            )
            statuses[response.status_code] += 1

            assert response.status_code < 500, response.get_data()
            if response.mimetype == "application/json":
                json.loads(response.get_data().decode("utf-8"))
            (answer_case or case).validate_response(response, checks=CHECKS)

    fuzz()
    # The requests reached past the signature, into the operations themselves.
    assert statuses.keys() & {200, 201}, statuses
    assert statuses.keys() & {404, 409}, statuses
