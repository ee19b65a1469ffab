"""Operators run the platform: clients, secret keys shown once, encrypted batch passwords."""

import re

import pytest
from django.db import connection

from clients.models import Client, SecretKey
from tests.admin.conftest import form_data, html, message_texts
from tests.factories import UserFactory, issue_key


def generate_key(client, target):
    return client.post(
        "/admin/clients/client/",
        {"action": "generate_secret_key", "_selected_action": [target.pk]},
    )


def stored_column(table, column, pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_operator_sees_every_clients_rows(operator_client, tenant_data):
    for url, attr in [
        ("/admin/clients/client/", "client"),
        ("/admin/notifications/notification/", "notification"),
        ("/admin/templates_app/contenttemplate/", "template"),
    ]:
        response = operator_client.get(url)
        assert set(response.context["cl"].result_list) == {
            getattr(tenant_data.own, attr),
            getattr(tenant_data.other, attr),
        }


def test_operator_generates_a_secret_key_and_sees_the_secret_exactly_once(
    operator_client, client_8003
):
    response = generate_key(operator_client, client_8003)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = re.search(r'<code id="issued-secret"[^>]*>([^<]+)</code>', html(response)).group(1)
    key = SecretKey.objects.get(client=client_8003)
    assert key.secret() == secret
    assert len(secret) >= 43

    later_pages = [
        operator_client.get(f"/admin/clients/secretkey/{key.pk}/change/"),
        operator_client.get("/admin/clients/secretkey/"),
        operator_client.get(f"/admin/clients/client/{client_8003.pk}/change/"),
    ]
    for page in later_pages:
        assert page.status_code == 200
        assert key.fingerprint in html(page)
        assert secret not in html(page)
    assert secret not in stored_column("clients_secretkey", "secret_encrypted", key.pk)


def test_operator_third_active_key_is_refused_with_a_message(operator_client, client_8003):
    issue_key(client_8003)
    issue_key(client_8003)

    response = generate_key(operator_client, client_8003)

    assert response.status_code == 302
    assert any("already has 2 active secret keys" in text for text in message_texts(response))
    assert client_8003.secret_keys.count() == 2


def test_operator_generating_a_key_for_two_clients_at_once_is_refused(
    operator_client, client_8002, client_8003
):
    response = operator_client.post(
        "/admin/clients/client/",
        {"action": "generate_secret_key", "_selected_action": [client_8002.pk, client_8003.pk]},
    )

    assert response.status_code == 302
    assert "Select exactly one client." in message_texts(response)
    assert not SecretKey.objects.exists()


@pytest.mark.parametrize("role", ["client_staff", "support", None])
def test_only_operators_can_generate_a_secret_key(client, client_8002, role):
    user = UserFactory(role=role, clients=[client_8002])
    client.force_login(user)

    response = generate_key(client, client_8002)

    # Without the action on offer the POST just shows the list again (or is refused).
    assert response.status_code in (200, 302, 403)
    assert "issued-secret" not in html(response)
    assert not SecretKey.objects.exists()


def test_operator_sets_the_batch_password_which_is_stored_encrypted(operator_client, client_8003):
    change_url = f"/admin/clients/client/{client_8003.pk}/change/"
    data = form_data(operator_client.get(change_url))
    assert data["new_batch_password"] == ""
    data["new_batch_password"] = "s3cret-zip-Pass"

    response = operator_client.post(change_url, data)

    assert response.status_code == 302
    stored = stored_column("clients_client", "batch_password_encrypted", client_8003.pk)
    assert stored.startswith("gAAAAA")  # a Fernet token
    assert "s3cret-zip-Pass" not in stored
    assert Client.objects.get(pk=client_8003.pk).batch_password() == "s3cret-zip-Pass"
    page = html(operator_client.get(change_url))
    assert "s3cret-zip-Pass" not in page
    assert stored not in page
    assert "new_batch_password" in page


def test_operator_saving_the_client_without_a_new_password_keeps_the_old_one(
    operator_client, client_8003
):
    client_8003.set_batch_password("old-zip-pass")
    client_8003.save()
    change_url = f"/admin/clients/client/{client_8003.pk}/change/"
    data = form_data(operator_client.get(change_url))
    data["name"] = "PT Pembiayaan Contoh Baru"

    response = operator_client.post(change_url, data)

    assert response.status_code == 302
    client_8003.refresh_from_db()
    assert client_8003.name == "PT Pembiayaan Contoh Baru"
    assert client_8003.batch_password() == "old-zip-pass"


def test_operator_can_open_the_task_queue_admin(operator_client):
    assert operator_client.get("/admin/django_q/schedule/").status_code == 200


def test_operator_adds_a_client_with_its_batch_password(operator_client):
    data = form_data(operator_client.get("/admin/clients/client/add/"))
    data.update(client_id="8011", name="PT Baru", new_batch_password="first-zip-pass")

    response = operator_client.post("/admin/clients/client/add/", data)

    assert response.status_code == 302
    assert Client.objects.get(client_id="8011").batch_password() == "first-zip-pass"
