"""The API's documentation (/api/docs/, /api/schema/) can be made private: API_DOCS_PUBLIC."""

import pytest
from django.urls import reverse

from tests.factories import UserFactory

DOCS = ["/api/schema/", "/api/docs/", "/api/docs/?script="]


@pytest.fixture
def private_docs(settings):
    settings.API_DOCS_PUBLIC = False


@pytest.mark.usefixtures("private_docs")
@pytest.mark.parametrize("path", DOCS)
def test_private_docs_send_an_anonymous_reader_to_sign_in_instead(client, path):
    response = client.get(path, HTTP_HOST="127.0.0.1")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login") + "?next=/api/")
    assert b"/notif" not in response.content


@pytest.mark.usefixtures("private_docs")
def test_private_docs_are_not_for_a_signed_in_user_the_admin_would_not_let_in(client, db):
    client.force_login(UserFactory(is_staff=False))

    response = client.get("/api/schema/", HTTP_HOST="127.0.0.1")

    assert response.status_code == 302
    assert b"/notif" not in response.content


@pytest.mark.usefixtures("private_docs")
def test_private_docs_are_read_by_signed_in_staff(staff_client):

    schema = staff_client.get("/api/schema/", HTTP_HOST="127.0.0.1")
    page = staff_client.get("/api/docs/", HTTP_HOST="127.0.0.1")

    assert schema.status_code == 200
    assert b"/notif:" in schema.content
    assert page.status_code == 200
    assert b'id="swagger-ui"' in page.content
