"""Support reads every client's data, changes nothing, and finds notifications by reference."""

import zoneinfo

import pytest

from notifications.models import Notification
from tests.admin.conftest import MARKERS_8003, html
from tests.factories import BatchFactory, DeliveryEventFactory, NotificationFactory, issue_key

READ_ONLY_MODELS = [
    pytest.param("clients/client", "client", id="client"),
    pytest.param("clients/application", "application", id="application"),
    pytest.param("templates_app/contenttemplate", "template", id="template"),
    pytest.param("notifications/notification", "notification", id="notification"),
    pytest.param("notifications/delivery", "delivery", id="delivery"),
    pytest.param("batches/batch", "batch", id="batch"),
]


def search_notifications(client, term):
    response = client.get("/admin/notifications/notification/", {"q": term})
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


@pytest.mark.parametrize(("model_url", "attr"), READ_ONLY_MODELS)
def test_support_views_rows_of_every_client(support_client, tenant_data, model_url, attr):
    changelist = support_client.get(f"/admin/{model_url}/")
    other = getattr(tenant_data.other, attr)
    change_page = support_client.get(f"/admin/{model_url}/{other.pk}/change/")

    assert set(changelist.context["cl"].result_list) == {
        getattr(tenant_data.own, attr),
        other,
    }
    assert change_page.status_code == 200
    assert change_page.context["has_change_permission"] is False


@pytest.mark.parametrize(("model_url", "attr"), READ_ONLY_MODELS)
def test_support_cannot_change_add_or_delete_anything(support_client, tenant_data, model_url, attr):
    obj = getattr(tenant_data.other, attr)
    before = type(obj).objects.filter(pk=obj.pk).values().get()

    change = support_client.post(f"/admin/{model_url}/{obj.pk}/change/", {"name": "Changed"})
    delete = support_client.post(f"/admin/{model_url}/{obj.pk}/delete/", {"post": "yes"})
    add = support_client.get(f"/admin/{model_url}/add/")

    assert (change.status_code, delete.status_code, add.status_code) == (403, 403, 403)
    assert type(obj).objects.filter(pk=obj.pk).values().get() == before


def test_support_finds_a_notification_of_any_client_by_exact_reference(support_client, tenant_data):
    assert search_notifications(support_client, MARKERS_8003["reference"]) == [
        tenant_data.other.notification
    ]
    assert search_notifications(support_client, "REF-NUSANTARA-1") == [tenant_data.own.notification]
    assert search_notifications(support_client, "  REF-NUSANTARA-1 ") == [
        tenant_data.own.notification
    ]


def test_support_search_finds_the_same_reference_in_every_client(support_client, tenant_data):
    shared = {
        NotificationFactory(application=rows.application, reference="INV-2024-001")
        for rows in (tenant_data.own, tenant_data.other)
    }

    assert set(search_notifications(support_client, "INV-2024-001")) == shared


@pytest.mark.parametrize("term", ["REF-PEMBIAYAAN", "REF-", "PEMBIAYAAN-1", "ref-pembiayaan-1"])
def test_support_search_is_exact_so_part_of_a_reference_finds_nothing(
    support_client, tenant_data, term
):
    assert search_notifications(support_client, term) == []


def test_support_delivery_search_is_by_exact_notification_reference(support_client, tenant_data):
    response = support_client.get(
        "/admin/notifications/delivery/", {"q": MARKERS_8003["reference"]}
    )

    assert list(response.context["cl"].result_list) == [tenant_data.other.delivery]


def test_support_sees_the_timeline_of_a_notification_html_escaped(support_client, tenant_data):
    delivery = tenant_data.other.delivery
    DeliveryEventFactory(
        delivery=delivery,
        old_status="PENDING",
        new_status="FAILED",
        detail="<script>alert('x')</script> provider said no",
    )

    response = support_client.get(
        f"/admin/notifications/notification/{delivery.notification.pk}/change/"
    )

    page = html(response)
    assert response.status_code == 200
    assert MARKERS_8003["event_detail"] in page
    assert "PENDING → FAILED" in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; provider said no" in page
    assert "<script>alert(" not in page


def test_the_timeline_starts_with_the_acceptance_and_names_the_batch_line(
    support_client, tenant_data
):
    notification = tenant_data.other.delivery.notification

    page = html(support_client.get(f"/admin/notifications/notification/{notification.pk}/change/"))

    # In the client's time zone (Asia/Jakarta by default), named.
    local = notification.created_at.astimezone(zoneinfo.ZoneInfo(notification.client.time_zone))
    assert f"<td>{local:%Y-%m-%d %H:%M:%S %Z}" in page
    assert "— → ACCEPTED" in page
    assert f"accepted via {notification.source}" in page


def test_an_older_notifications_acceptance_event_is_not_shown_twice(support_client, tenant_data):
    delivery = tenant_data.other.delivery
    DeliveryEventFactory(
        delivery=delivery, old_status="", new_status="PENDING", detail="accepted via api"
    )

    page = html(
        support_client.get(f"/admin/notifications/notification/{delivery.notification.pk}/change/")
    )

    assert page.count("accepted via api") == 1


def test_a_batch_notification_timeline_names_its_batch_and_line(support_client, app_8003):
    batch = BatchFactory(client=app_8003.client)
    notification = NotificationFactory(
        application=app_8003, source="batch", batch=batch, batch_line=17
    )

    page = html(support_client.get(f"/admin/notifications/notification/{notification.pk}/change/"))

    assert f"accepted via batch {batch.pk}, line 17" in page


def test_support_sees_parameters_html_escaped(support_client, tenant_data):
    notification = NotificationFactory(
        application=tenant_data.other.application,
        params={"customerName": "<b>Budi</b>", "balance": "100"},
    )

    page = html(support_client.get(f"/admin/notifications/notification/{notification.pk}/change/"))

    assert "&lt;b&gt;Budi&lt;/b&gt;" in page
    assert "<b>Budi</b>" not in page


def test_support_cannot_see_secret_keys_nor_batch_passwords(support_client, client_8003):
    key, secret = issue_key(client_8003)
    client_8003.set_batch_password("zip-password-8003")
    client_8003.save()

    assert support_client.get("/admin/clients/secretkey/").status_code == 403
    assert support_client.get(f"/admin/clients/secretkey/{key.pk}/change/").status_code == 403
    page = html(support_client.get(f"/admin/clients/client/{client_8003.pk}/change/"))
    for hidden in ("new_batch_password", "Batch password", key.fingerprint, secret):
        assert hidden not in page
    assert "zip-password-8003" not in page


@pytest.mark.parametrize("url", ["/admin/django_q/schedule/", "/admin/auth/user/"])
def test_support_cannot_open_task_queue_or_user_pages(support_client, url):
    assert support_client.get(url).status_code == 403


def test_support_cannot_run_the_delete_action_on_notifications(support_client, tenant_data):
    notification = tenant_data.other.notification

    support_client.post(
        "/admin/notifications/notification/",
        {"action": "delete_selected", "_selected_action": [notification.pk], "post": "yes"},
    )

    assert Notification.objects.filter(pk=notification.pk).exists()
