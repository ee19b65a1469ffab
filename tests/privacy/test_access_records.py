"""Every reading of personal data in the admin is recorded (who, when, what, from where),
and only operators list the records, which nobody edits or deletes."""

import pytest
from django.test import Client
from django.utils import timezone

from notifications.models import AccessKind, PersonalDataAccess

RECORDS = "/admin/notifications/personaldataaccess/"


def page(notification) -> str:
    return f"/admin/notifications/notification/{notification.pk}/change/"


def test_support_viewing_a_notification_page_leaves_one_record(
    support_client, support_user, two_clients
):
    before = timezone.now()

    response = support_client.get(page(two_clients.other), REMOTE_ADDR="203.0.113.7")

    assert response.status_code == 200
    record = PersonalDataAccess.objects.get()
    assert (record.user, record.username, record.kind) == (support_user, "support", AccessKind.VIEW)
    assert (record.notification, record.reference) == (two_clients.other, "REF-OTHER-1")
    assert record.client == two_clients.other.client
    assert record.address == "203.0.113.7"
    assert record.page == page(two_clients.other)
    assert record.at >= before


@pytest.mark.parametrize("listing", ["notification", "delivery"])
def test_a_search_of_a_list_leaves_one_record_with_what_was_searched(
    support_client, support_user, two_clients, listing
):
    url = f"/admin/notifications/{listing}/"

    assert support_client.get(url, {"q": "0813-9999-0000"}).status_code == 200
    assert support_client.get(url).status_code == 200  # browsing, no search: no record

    record = PersonalDataAccess.objects.get()
    assert (record.user, record.kind, record.page) == (support_user, AccessKind.SEARCH, url)
    assert record.filters == "q=0813-9999-0000"


def test_behind_a_trusted_proxy_the_address_is_the_one_the_proxy_saw(
    settings, support_client, two_clients
):
    settings.BEHIND_TRUSTED_PROXY = True

    support_client.get(
        page(two_clients.own),
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9",
    )

    assert PersonalDataAccess.objects.get().address == "203.0.113.9"


def test_without_a_trusted_proxy_a_forwarded_address_is_not_believed(support_client, two_clients):
    support_client.get(
        page(two_clients.own), REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )

    assert PersonalDataAccess.objects.get().address == "10.0.0.2"


def test_a_delivery_page_is_recorded_as_its_notification(staff_client, staff_8002, two_clients):
    delivery = two_clients.own.deliveries.get(medium="sms")

    response = staff_client.get(f"/admin/notifications/delivery/{delivery.pk}/change/")

    assert response.status_code == 200
    record = PersonalDataAccess.objects.get()
    assert (record.user, record.notification) == (staff_8002, two_clients.own)


def test_operators_are_recorded_too(operator_client, operator_user, two_clients):
    operator_client.get(page(two_clients.own))

    assert PersonalDataAccess.objects.get().user == operator_user


def test_a_page_client_staff_may_not_see_is_not_shown_nor_recorded_as_read(
    staff_client, two_clients
):
    response = staff_client.get(page(two_clients.other))

    assert response.status_code == 302  # the admin's "does not exist" redirect
    assert not PersonalDataAccess.objects.exists()


def test_the_list_is_not_a_reading_of_a_notification(support_client, two_clients):
    support_client.get("/admin/notifications/notification/")

    assert not PersonalDataAccess.objects.exists()


def test_client_staff_export_is_recorded_with_its_filter_and_row_count(
    staff_client, staff_8002, two_clients
):
    response = staff_client.get(
        "/admin/notifications/notification/export/?status__exact=DELIVERED",
        REMOTE_ADDR="203.0.113.8",
    )
    b"".join(response.streaming_content)

    record = PersonalDataAccess.objects.get()
    assert (record.user, record.kind, record.address) == (
        staff_8002,
        AccessKind.EXPORT,
        "203.0.113.8",
    )
    assert record.filters == "status__exact=DELIVERED"
    assert record.row_count == 1


def test_an_export_is_recorded_before_its_first_row(staff_client, two_clients):
    response = staff_client.get("/admin/notifications/notification/export/")

    record = PersonalDataAccess.objects.get()
    assert record.row_count is None  # not read yet: a cut-off download stays recorded
    b"".join(response.streaming_content)
    record.refresh_from_db()
    assert record.row_count == 1


@pytest.mark.parametrize("reader", ["support_client", "staff_client"])
def test_support_and_client_staff_cannot_see_the_records(request, reader, two_clients):
    browser = request.getfixturevalue(reader)
    browser.get(page(two_clients.own))
    record = PersonalDataAccess.objects.get()

    assert browser.get(RECORDS).status_code == 403
    assert browser.get(f"{RECORDS}{record.pk}/change/").status_code == 403
    assert b"personaldataaccess" not in browser.get("/admin/").content


def test_operators_list_and_search_the_records_by_reference(
    operator_client, support_user, two_clients
):
    support = Client()
    support.force_login(support_user)
    support.get(page(two_clients.own))
    support.get(page(two_clients.other))

    listed = operator_client.get(RECORDS, {"q": "REF-OTHER-1"})
    by_user = operator_client.get(RECORDS, {"user__id__exact": support_user.pk})

    assert listed.status_code == 200
    assert [r.reference for r in listed.context["cl"].result_list] == ["REF-OTHER-1"]
    assert len(by_user.context["cl"].result_list) == 2
    assert operator_client.get(RECORDS, {"kind__exact": "VIEW"}).status_code == 200


def test_nobody_edits_adds_or_deletes_a_record_in_the_admin(
    operator_client, support_user, two_clients
):
    record = PersonalDataAccess.objects.create(
        user=support_user, username="support", kind=AccessKind.VIEW
    )
    before = PersonalDataAccess.objects.filter(pk=record.pk).values().get()

    change = operator_client.post(f"{RECORDS}{record.pk}/change/", {"username": "someone-else"})
    delete = operator_client.post(f"{RECORDS}{record.pk}/delete/", {"post": "yes"})
    add = operator_client.get(f"{RECORDS}add/")
    bulk = operator_client.post(
        RECORDS, {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"}
    )

    assert (change.status_code, delete.status_code, add.status_code) == (403, 403, 403)
    assert bulk.status_code in (200, 302)
    assert PersonalDataAccess.objects.filter(pk=record.pk).values().get() == before
    assert operator_client.get(f"{RECORDS}{record.pk}/change/").status_code == 200
