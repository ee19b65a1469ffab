"""The live preview endpoint: the real renderer, the SMS counters, and tenant isolation."""

import pytest

from tests.factories import ContentTemplateFactory, UserFactory

PREVIEW_URL = "/admin/templates_app/contenttemplate/preview/"


def preview(http, application, **parts):
    return http.post(PREVIEW_URL, {"application": application.pk, "medium": "sms", **parts})


def test_it_renders_the_sample_with_the_real_renderer(staff_client, sms_template, app_8002):
    answer = preview(
        staff_client, app_8002, body="Bank Demo: Rp [balance|rupiah] for [customerName]"
    )

    result = answer.json()
    assert answer.status_code == 200
    assert result["valid"] is True
    assert result["preview"]["body"] == "Bank Demo: Rp 1.230.000 for John Doe"
    assert result["sms"] == {
        "characters": 36,
        "encoding": "GSM-7",
        "segments": 1,
        "units": 36,
        "remaining": 124,
    }


def test_it_reports_errors_without_saving(staff_client, sms_template, app_8002):
    result = preview(staff_client, app_8002, body="Bank Demo [saldo]").json()

    assert result["valid"] is False
    assert "[saldo] at line 1, column 11" in result["errors"]["body"][0]
    sms_template.refresh_from_db()
    assert "[saldo]" not in sms_template.body


def test_one_emoji_switches_the_counter_to_ucs2(staff_client, sms_template, app_8002):
    result = preview(staff_client, app_8002, body="Bank Demo [customerName] 🙂").json()

    assert result["sms"]["encoding"] == "UCS-2"


def test_markup_in_a_template_comes_back_as_text_in_json(staff_client, sms_template, app_8002):
    result = preview(staff_client, app_8002, body="Bank Demo <img src=x onerror=alert(1)>").json()

    # The page shows it with textContent; the JSON carries the characters as they are.
    assert result["preview"]["body"] == "Bank Demo <img src=x onerror=alert(1)>"


def test_client_staff_cannot_preview_another_clients_application(staff_client, app_8003):
    ContentTemplateFactory(application=app_8003)
    app_8003.sample_values = {"customerName": "Rahasia Pelanggan 8003"}
    app_8003.save()

    answer = preview(staff_client, app_8003, body="[customerName]")

    assert answer.status_code == 404
    assert b"Rahasia" not in answer.content


def test_client_staff_cannot_open_another_clients_versions(staff_client, app_8003):
    other = ContentTemplateFactory(application=app_8003, body="Rahasia [customerName]")

    page = staff_client.get(f"/admin/templates_app/contenttemplate/{other.pk}/versions/1/")
    restore = staff_client.post(
        f"/admin/templates_app/contenttemplate/{other.pk}/versions/1/restore/"
    )

    assert page.status_code == restore.status_code == 404
    assert b"Rahasia" not in page.content
    assert other.versions.count() == 1


def test_support_may_preview_but_not_restore(client, sms_template, app_8002):
    client.force_login(UserFactory(role="support"))

    assert preview(client, app_8002, body="Bank Demo [customerName]").status_code == 200
    restore = client.post(
        f"/admin/templates_app/contenttemplate/{sms_template.pk}/versions/1/restore/"
    )
    assert restore.status_code == 403


@pytest.mark.parametrize("method", ["get", "put"])
def test_the_preview_only_takes_posts(staff_client, method):
    assert getattr(staff_client, method)(PREVIEW_URL).status_code == 405


def test_anonymous_users_are_sent_to_the_login_page(client, app_8002):
    answer = preview(client, app_8002, body="x")

    assert answer.status_code == 302
    assert "/admin/login/" in answer["Location"]
