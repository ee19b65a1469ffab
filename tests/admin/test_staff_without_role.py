"""A staff user in no role group may log in to the control panel but sees no data."""

import pytest

from tests.factories import UserFactory

CHANGELISTS = [
    "/admin/clients/client/",
    "/admin/clients/secretkey/",
    "/admin/clients/application/",
    "/admin/templates_app/contenttemplate/",
    "/admin/notifications/notification/",
    "/admin/notifications/delivery/",
    "/admin/batches/batch/",
    "/admin/django_q/schedule/",
    "/admin/auth/user/",
]


@pytest.fixture(params=["unlinked", "linked_to_8002"])
def no_role_client(request, client, client_8002):
    """A staff user in no group; linked or not to a client through Client.staff."""
    clients = [client_8002] if request.param == "linked_to_8002" else []
    client.force_login(UserFactory(username="norole", clients=clients))
    return client


@pytest.mark.parametrize("url", CHANGELISTS)
def test_staff_user_without_a_role_is_refused_every_changelist(no_role_client, tenant_data, url):
    assert no_role_client.get(url).status_code == 403


def test_staff_user_without_a_role_cannot_open_a_clients_object(no_role_client, tenant_data):
    notification = tenant_data.own.notification

    response = no_role_client.get(f"/admin/notifications/notification/{notification.pk}/change/")

    assert response.status_code in (302, 403)
    assert notification.reference not in response.content.decode()


def test_staff_user_without_a_role_autocomplete_is_refused(no_role_client, tenant_data):
    response = no_role_client.get(
        "/admin/autocomplete/",
        {
            "app_label": "templates_app",
            "model_name": "contenttemplate",
            "field_name": "application",
            "term": "",
        },
    )

    assert response.status_code == 403


def test_staff_user_without_a_role_sees_an_empty_admin_index(no_role_client, tenant_data):
    response = no_role_client.get("/admin/")

    assert response.status_code == 200
    assert response.context["app_list"] == []
