"""Every answer of /notif parses, whatever characters the request held."""

import json
from xml.etree import ElementTree

import lxml.etree
import pytest

from notifications.models import Notification
from tests.api.conftest import demo_fields

# References the validator refuses (control characters), some of which XML 1.0 cannot
# carry at all, not even as &#…;.
REFUSED_REFERENCES = [
    "NUL\x00here",
    "bell\x07and\x1bescape",
    "form\x0cfeed",
    "del\x7fand\x85next-line",
    "line\r\nbreak",
]
# References it accepts, as the XML answer must echo them.
ACCEPTED_REFERENCES = {
    "<tag attr='x'>&amp;]]></tag>": "<tag attr='x'>&amp;]]></tag>",
    "\U0001f600 emoji": "\U0001f600 emoji",
    # Non-characters XML 1.0 cannot carry: replaced by U+FFFD, as the README says.
    "non\ufffecharacter\uffff": "non\ufffdcharacter\ufffd",
}


def strict_parses(content: bytes) -> None:
    """Raise unless `content` is well-formed XML 1.0 to both expat and libxml2."""
    ElementTree.fromstring(content)
    lxml.etree.fromstring(content, lxml.etree.XMLParser(recover=False))


def raw_json_post(api, body: bytes, *, fmt="json"):
    headers = {"HTTP_ACCEPT": "application/xml"} if fmt == "xml" else {}
    return api.http.post("/notif", body, content_type="application/json", **headers)


@pytest.mark.parametrize("reference", REFUSED_REFERENCES)
@pytest.mark.parametrize("via", ["get", "form", "json"])
def test_an_xml_answer_parses_whatever_the_refused_reference_held(api, reference, via):
    parameters = api.signed(operation="create", **demo_fields(reference=reference))

    answer = api.call(parameters, via=via, fmt="xml")  # the conftest parses it with ElementTree

    strict_parses(answer.response.content)
    assert answer.status_code == 400
    assert answer.code == "VALIDATION_ERROR"
    assert "clientNotifRefId" in answer.body["errors"]


@pytest.mark.parametrize("reference", ACCEPTED_REFERENCES)
@pytest.mark.parametrize("via", ["get", "form", "json"])
def test_an_xml_answer_echoes_an_accepted_reference_as_xml_can_carry_it(api, reference, via):
    parameters = api.signed(operation="create", **demo_fields(reference=reference))

    answer = api.call(parameters, via=via, fmt="xml")

    strict_parses(answer.response.content)
    assert answer.status_code == 201
    assert answer.body["requestId"] == ACCEPTED_REFERENCES[reference]
    assert Notification.objects.get().reference == reference


def test_a_field_name_xml_cannot_carry_comes_back_replaced_in_a_parsable_answer(api):
    parameters = api.signed(operation="create", **demo_fields(**{"bad\x00name\x01": "x"}))

    answer = api.call(parameters, via="form", fmt="xml")

    strict_parses(answer.response.content)
    assert answer.code == "VALIDATION_ERROR"
    # Replaced by U+FFFD, the README says: XML 1.0 has no way to write U+0000 or U+0001.
    assert "bad\ufffdname\ufffd" in answer.body["errors"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_json_body_with_a_lone_surrogate_is_a_validation_error(api, fmt):
    body = json.dumps(api.signed(operation="create", **demo_fields()))
    body = body.replace('"John Doe"', '"John \\ud800 Doe"')  # a lone surrogate, escaped

    response = raw_json_post(api, body.encode(), fmt=fmt)

    assert response.status_code == 400, response.content
    if fmt == "xml":
        strict_parses(response.content)
        assert ElementTree.fromstring(response.content).findtext("code") == "VALIDATION_ERROR"
    else:
        assert response.json()["code"] == "VALIDATION_ERROR"
    assert not Notification.objects.exists()


def test_a_lone_surrogate_in_a_json_key_is_a_validation_error_answered_in_valid_utf8(api):
    body = json.dumps(api.signed(operation="status", clientNotifRefId="R"))
    body = body[:-1] + ', "x\\udc00y": "1"}'

    response = raw_json_post(api, body.encode())

    assert response.status_code == 400
    response.content.decode("utf-8")  # strict: a surrogate cannot be in valid UTF-8
    assert response.json()["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_json_body_giving_a_key_twice_is_a_validation_error(api, fmt):
    signed = api.signed(operation="create", **demo_fields())
    body = json.dumps(signed)[:-1] + ', "balance": "1"}'  # balance again, after signing

    response = raw_json_post(api, body.encode(), fmt=fmt)

    assert response.status_code == 400
    if fmt == "xml":
        strict_parses(response.content)
        errors = ElementTree.fromstring(response.content).find("errors")
        assert [e.get("field") for e in errors] == ["balance"]
    else:
        assert response.json()["code"] == "VALIDATION_ERROR"
        assert response.json()["errors"] == {"balance": ["Given more than once."]}
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000 + b"]" * 10_000,  # deeper than Python's recursion limit
        b'{"balance": 1' + b"0" * 5000 + b"}",  # past int()'s 4,300 digits
        b'{"customerName": "\xff\xfe"}',  # not UTF-8
        b'{"balance": NaN}',
    ],
    ids=["deep-nesting", "huge-integer", "not-utf8", "nan"],
)
def test_a_malformed_json_body_is_a_validation_error(api, body):
    response = raw_json_post(api, body)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("via", ["get", "form", "json"])
def test_a_nul_in_a_platform_parameter_is_a_validation_error_not_a_fault(api, via):
    # PostgreSQL refuses NUL in text: looked up as is, it used to end in a 503.
    parameters = api.signed(operation="create", **demo_fields(appType="AB\x00C"))

    answer = api.call(parameters, via=via)

    assert answer.status_code == 400
    assert answer.code == "VALIDATION_ERROR"
    assert "appType" in answer.body["errors"]


@pytest.mark.parametrize("via", ["get", "form", "json"])
def test_a_status_of_a_reference_with_a_nul_is_a_validation_error_not_a_fault(api, via):
    answer = api.call(api.signed(operation="status", clientNotifRefId="R\x00"), via=via)

    assert answer.status_code == 400
    assert answer.code == "VALIDATION_ERROR"
    assert "clientNotifRefId" in answer.body["errors"]


def test_a_request_id_header_that_is_not_plain_text_is_replaced_by_ours(api):
    response = api.http.get(
        "/notif", api.signed(operation="status", clientNotifRefId="R"), HTTP_X_REQUEST_ID="a\nb"
    )

    assert response.status_code == 404
    assert response["X-Request-ID"] != "a\nb"
    assert response["X-Request-ID"].isalnum()
