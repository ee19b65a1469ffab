"""The OpenAPI description at /api/schema/ says what the server really sends and accepts."""

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clients.signing import sign
from tests.api.conftest import SECRET_8002

PLATFORM_PARAMETERS = {
    "clientId",
    "operation",
    "clientNotifRefId",
    "timestamp",
    "signature",
    "format",
    "appType",
}
ANSWER_CODES = {
    "get": ["200", "201", "400", "401", "403", "404", "409", "413", "429", "503"],
    # A GET's body is never read: only a POST's media type can be unsupported.
    "post": ["200", "201", "400", "401", "403", "404", "409", "413", "415", "429", "503"],
}


@pytest.fixture
def published(client):
    response = client.get(
        "/api/schema/", HTTP_HOST="127.0.0.1", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    )
    assert response.status_code == 200
    return response.json()


def resolved(published, schema: dict) -> dict:
    if "$ref" in schema:
        return published["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def query_parameter(published, name) -> dict:
    (parameter,) = [
        p for p in published["paths"]["/notif"]["get"]["parameters"] if p["name"] == name
    ]
    return parameter


@pytest.mark.parametrize("method", ["get", "post"])
def test_every_answer_is_documented_in_json_and_in_xml(published, method):
    responses = published["paths"]["/notif"][method]["responses"]

    assert sorted(responses) == ANSWER_CODES[method]
    for code in ANSWER_CODES[method]:
        assert set(responses[code]["content"]) == {"application/json", "application/xml"}, code
        assert responses[code]["headers"]["X-Request-ID"]["required"] is True


def test_the_xml_answer_is_described_as_the_renderer_writes_it(published):
    content = published["paths"]["/notif"]["get"]["responses"]["400"]["content"]
    schema = resolved(published, content["application/xml"]["schema"])

    assert schema["xml"] == {"name": "response"}
    errors = schema["properties"]["errors"]
    assert errors["xml"] == {"wrapped": True}
    assert errors["items"]["xml"] == {"name": "error"}
    assert errors["items"]["properties"]["field"]["xml"] == {"attribute": True}


def test_each_platform_parameter_has_its_real_format(published):
    timestamp = query_parameter(published, "timestamp")["schema"]
    reference = query_parameter(published, "clientNotifRefId")["schema"]
    operation = query_parameter(published, "operation")["schema"]

    assert timestamp["pattern"] == "^[0-9]{1,12}$"
    assert (reference["minLength"], reference["maxLength"]) == (1, 100)
    assert reference["pattern"] == "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    assert operation["enum"] == ["create", "status", "cancel"]
    assert query_parameter(published, "clientId")["schema"]["pattern"] == "^[A-Za-z0-9_-]{1,32}$"
    assert query_parameter(published, "format")["schema"]["enum"] == ["json", "xml"]


def test_a_post_takes_its_parameters_from_the_body_alone(published):
    post = published["paths"]["/notif"]["post"]

    assert not any(p["in"] == "query" for p in post.get("parameters", []))
    body = post["requestBody"]["content"]
    assert set(body) == {"application/x-www-form-urlencoded", "application/json"}
    for media_type in body.values():
        schema = resolved(published, media_type["schema"])
        assert set(schema["properties"]) >= PLATFORM_PARAMETERS
        assert {"clientId", "operation", "clientNotifRefId", "timestamp", "signature"} <= set(
            schema["required"]
        )


def test_requests_generated_from_the_schema_pass_the_platform_s_own_checks(api, published):
    """A client generated from the schema sends what the server accepts: whatever the
    generator draws within the documented formats, no platform parameter is refused."""
    operation = schemathesis.openapi.from_dict(published)["/notif"]["GET"]

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), use_format=st.booleans())
    def check(case, use_format):
        # "Required for create" is the one rule the schema states in words only.
        assume(case.query.get("operation") != "create" or "appType" in case.query)
        parameters = {
            name: str(value) for name, value in case.query.items() if name in PLATFORM_PARAMETERS
        }
        if not use_format:
            parameters.pop("format", None)
        # What no schema can know: who the client is, its key, and the time now.
        parameters.update(clientId="8002", timestamp=str(int(time.time())))
        parameters.pop("signature", None)
        parameters["signature"] = sign(parameters, SECRET_8002)

        answer = api.call(parameters, via="get", fmt=parameters.get("format", "json"))

        assert answer.status_code < 500, answer.body
        assert not PLATFORM_PARAMETERS & set(answer.body.get("errors", {})), (
            parameters,
            answer.body,
        )

    check()
