"""The signing helper operators hand to clients, and the published OpenAPI description."""

import io
from urllib.parse import urlsplit

from django.core.management import call_command

from tests.api.conftest import SECRET_8002


def test_sign_request_prints_a_url_the_api_accepts(api):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "sign_request",
        "clientId=8002",
        "appType=ABC",
        "operation=create",
        "clientNotifRefId=Budi & Sons/1",
        "customerName=Budi Śantoso",
        "balance=1230000",
        "dueDate=09-09-2015",
        "msisdn=081234567890",
        "--secret",
        SECRET_8002,
        "--show-string",
        stdout=out,
        stderr=err,
    )
    url = urlsplit(out.getvalue().strip())

    response = api.http.get(f"{url.path}?{url.query}")

    assert response.status_code == 201, response.content
    assert response.json()["requestId"] == "Budi & Sons/1"
    assert "customerName=Budi%20%C5%9Aantoso" in err.getvalue()


def test_the_openapi_schema_describes_notif_and_its_error_codes(client):
    response = client.get("/api/schema/", HTTP_HOST="127.0.0.1")

    assert response.status_code == 200
    schema = response.content.decode()
    assert "/notif:" in schema
    for code in ("DUPLICATE_REFERENCE", "EXPIRED_TIMESTAMP", "RATE_LIMITED", "NOT_CANCELLABLE"):
        assert code in schema
    assert "application/xml" in schema


def test_swagger_ui_is_served_without_a_cdn(client):
    response = client.get("/api/docs/", HTTP_HOST="127.0.0.1")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"cdn.jsdelivr" not in response.content
