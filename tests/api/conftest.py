"""Calling /notif as a client's system would: signed, over GET, form POST or JSON POST."""

import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from django.test import Client as HttpClient

from clients.signing import sign
from tests.factories import demo_values, issue_key

SECRET_8002 = "secret-of-8002-0123456789abcdef-0123456789"
SECRET_8003 = "secret-of-8003-0123456789abcdef-0123456789"

# (how the parameters travel, which format the answer is asked in)
TRANSPORTS = [
    ("get", "json"),
    ("get", "xml"),
    ("form", "json"),
    ("form", "xml"),
    ("json", "json"),
    ("json", "xml"),
]


@dataclass
class Answer:
    status_code: int
    body: dict
    response: object

    @property
    def code(self):
        return self.body.get("code")


def parse_xml(content: bytes) -> dict:
    root = ElementTree.fromstring(content)
    assert root.tag == "response"
    body = {}
    for child in root:
        if child.tag == "errors":
            errors = {}
            for error in child:
                errors.setdefault(error.get("field"), []).append(error.text)
            body["errors"] = errors
        elif child.tag == "deliveries":
            body["deliveries"] = [{item.tag: item.text for item in d} for d in child]
        else:
            body[child.tag] = child.text or ""
    return body


class NotifApi:
    """A client system calling the API; `call` signs unless told not to."""

    def __init__(self, client_id: str, secret: str):
        self.client_id = client_id
        self.secret = secret
        self.http = HttpClient(HTTP_HOST="127.0.0.1")

    def signed(self, secret=None, **parameters) -> dict:
        parameters = {"clientId": self.client_id, "timestamp": str(int(time.time())), **parameters}
        parameters["signature"] = sign(parameters, secret or self.secret)
        return parameters

    def call(self, parameters: dict, *, via="get", fmt="json", accept=None) -> Answer:
        headers = {}
        if fmt == "xml" and accept is None:
            headers["HTTP_ACCEPT"] = "application/xml"
        elif accept:
            headers["HTTP_ACCEPT"] = accept
        if via == "get":
            response = self.http.get("/notif", parameters, **headers)
        elif via == "form":
            response = self.http.post(
                "/notif",
                urlencode(parameters),
                content_type="application/x-www-form-urlencoded",
                **headers,
            )
        else:
            response = self.http.post(
                "/notif", json.dumps(parameters), content_type="application/json", **headers
            )
        if response["Content-Type"].startswith("application/xml"):
            body = parse_xml(response.content)
        else:
            assert response["Content-Type"].startswith("application/json"), response.content
            body = response.json()
        return Answer(response.status_code, body, response)

    def create(self, via="get", fmt="json", **fields) -> Answer:
        return self.call(self.signed(operation="create", **fields), via=via, fmt=fmt)


def demo_fields(reference="UNIQ-REFERENCE-ID", **overrides) -> dict:
    """A create request's parameters for app_8002: the demo values and the protocol's own."""
    return {"appType": "ABC", "clientNotifRefId": reference, **demo_values(**overrides)}


@pytest.fixture
def api(app_8002):
    issue_key(app_8002.client, secret=SECRET_8002)
    return NotifApi("8002", SECRET_8002)


@pytest.fixture
def api_8003(app_8003):
    issue_key(app_8003.client, secret=SECRET_8003)
    return NotifApi("8003", SECRET_8003)


@pytest.fixture(params=TRANSPORTS, ids=lambda t: f"{t[0]}-{t[1]}")
def transport(request):
    via, fmt = request.param
    return {"via": via, "fmt": fmt}
