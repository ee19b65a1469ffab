"""A secret no configured FIELD_ENCRYPTION_KEY opens (its key dropped too early) fails that
client's work alone, logged, and never another client's."""

import pytest

from batches.file_storage import batch_storage
from batches.ingest import batch_ingest
from clients.models import Client, SecretKey
from tests.admin.conftest import form_data, html
from tests.api.conftest import SECRET_8002, SECRET_8003, NotifApi, demo_fields
from tests.batches.conftest import PASSWORD, line, receive
from tests.clients.conftest import lost_key_token
from tests.factories import BatchFactory, issue_key


def lose_secret_keys(client) -> None:
    SecretKey.objects.filter(client=client).update(secret_encrypted=lost_key_token("lost"))


def lose_batch_password(client) -> None:
    Client.objects.filter(pk=client.pk).update(batch_password_encrypted=lost_key_token("lost"))


def test_an_api_request_of_a_client_whose_key_is_unreadable_is_refused_and_logged(
    api, api_8003, caplog
):
    lose_secret_keys(Client.objects.get(client_id="8002"))

    refused = api.create(**demo_fields())
    accepted = api_8003.create(**demo_fields(appType="XYZ"))

    assert (refused.status_code, refused.code) == (503, "KEY_UNREADABLE")
    assert "contact support" in refused.body["message"]
    assert "API request of client 8002 refused" in caplog.text
    assert (accepted.status_code, accepted.code) == (201, "OK")


def test_a_client_with_one_unreadable_key_still_signs_with_its_other_key(app_8002):
    unreadable, _ = issue_key(app_8002.client)
    SecretKey.objects.filter(pk=unreadable.pk).update(secret_encrypted=lost_key_token("lost"))
    issue_key(app_8002.client, secret=SECRET_8002)
    api = NotifApi("8002", SECRET_8002)

    assert api.create(**demo_fields()).status_code == 201
    # Signed with some other secret (perhaps the unreadable key's): the platform cannot
    # tell a wrong signature from its own fault, and says so.
    assert api.create(secret=SECRET_8003, **demo_fields(reference="R-2")).code == ("KEY_UNREADABLE")


def test_a_batch_of_a_client_whose_password_is_unreadable_fails_alone(
    batch_home, app_8002, app_8003, tmp_path, caplog
):
    for client in (app_8002.client, app_8003.client):
        client.set_batch_password(PASSWORD)
        client.save()
    lose_batch_password(app_8002.client)
    refused = receive(app_8002.client, tmp_path, "a.7z", line("A-1") + "\n")
    accepted = receive(
        app_8003.client, tmp_path, "b.7z", line("B-1", clientId="8003", appType="XYZ") + "\n"
    )

    assert batch_ingest(batch_id=refused.pk) == "FAILED"
    assert batch_ingest(batch_id=accepted.pk) == "DONE"

    refused.refresh_from_db()
    assert refused.failure_code == "PASSWORD_UNREADABLE"
    assert "cannot read this client's batch password" in refused.failure_message
    assert "the batch password of client 8002 is opened by no FIELD_ENCRYPTION_KEY" in (caplog.text)
    # Kept for support to reprocess once the key is back; no result file, which the
    # password would have encrypted.
    assert refused.result_path == ""
    assert batch_storage().exists(f"8002/failed/{refused.pk}-a.7z")
    accepted.refresh_from_db()
    assert (accepted.lines_accepted, accepted.result_path) == (1, "8003/outbox/b.result.7z")


@pytest.mark.parametrize(
    "page",
    [
        "/admin/clients/client/{client}/change/",
        "/admin/clients/client/",
        "/admin/clients/secretkey/",
        "/admin/clients/secretkey/{key}/change/",
        "/admin/batches/batch/",
        "/admin/batches/batch/{batch}/change/",
    ],
)
def test_the_admin_pages_of_a_client_whose_secrets_are_unreadable_open(
    operator_client, client_8002, page
):
    key, _ = issue_key(client_8002)
    batch = BatchFactory(client=client_8002)
    lose_secret_keys(client_8002)
    lose_batch_password(client_8002)

    response = operator_client.get(page.format(client=client_8002.pk, key=key.pk, batch=batch.pk))

    assert response.status_code == 200


def test_an_operator_replaces_an_unreadable_batch_password_in_the_admin(
    operator_client, client_8002
):
    lose_batch_password(client_8002)
    change_url = f"/admin/clients/client/{client_8002.pk}/change/"
    data = form_data(operator_client.get(change_url))
    data["new_batch_password"] = "a-new-zip-pass"

    assert operator_client.post(change_url, data).status_code == 302
    assert Client.objects.get(pk=client_8002.pk).batch_password() == "a-new-zip-pass"
    assert "not set" not in html(operator_client.get(change_url))
