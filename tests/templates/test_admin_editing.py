"""Editing templates in the admin: validation on save, warnings, sanitising and versions."""

from django.contrib.messages import get_messages

from templates_app.models import ContentTemplate, TemplateVersion
from tests.templates.conftest import change_url, submit


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_saving_records_a_new_version_with_who_and_what_changed(
    staff_client, staff_8002, sms_template
):
    response = submit(staff_client, sms_template, body="Bank Demo: Hello [customerName].")

    assert "Saved as version 2." in messages_of(response)
    version = sms_template.versions.get(number=2)
    assert version.body == "Bank Demo: Hello [customerName]."
    assert version.created_by == staff_8002
    assert version.change_summary == "changed body"
    assert sms_template.versions.get(number=1).body.startswith("Bank Demo: Dear")


def test_saving_unchanged_content_records_no_version(staff_client, sms_template):
    submit(staff_client, sms_template)

    assert sms_template.versions.count() == 1


def test_an_unknown_placeholder_is_refused_with_its_position(staff_client, sms_template):
    response = submit(
        staff_client, sms_template, body="Bank Demo: Dear [customerName],\nRp [saldo]."
    )

    errors = response.context["adminform"].form.errors["body"]
    assert errors == ["[saldo] at line 2, column 4: the application has no field 'saldo'."]
    assert ContentTemplate.objects.get(pk=sms_template.pk).body.startswith("Bank Demo: Dear")
    assert sms_template.versions.count() == 1


def test_a_filter_that_does_not_fit_the_field_is_refused(staff_client, sms_template):
    response = submit(staff_client, sms_template, body="Bank Demo [customerName|rupiah]")

    assert "rupiah works on a number field" in str(response.context["adminform"].form.errors)


def test_an_sms_longer_than_the_segment_limit_cannot_be_saved(staff_client, sms_template, app_8002):
    app_8002.sms_segment_limit = 1
    app_8002.save()

    response = submit(staff_client, sms_template, body="Bank Demo [customerName] " + "x" * 150)

    errors = str(response.context["adminform"].form.errors["body"])
    assert "2 SMS segments" in errors
    assert "at most 1" in errors


def test_an_sms_without_the_brand_name_saves_with_a_warning(staff_client, sms_template):
    response = submit(
        staff_client, sms_template, body="Dear [customerName], Rp [balance] [dueDate]"
    )

    assert any("brand name 'Bank Demo'" in text for text in messages_of(response))
    assert sms_template.versions.count() == 2


def test_a_required_field_no_template_uses_is_a_warning(staff_client, sms_template):
    response = submit(staff_client, sms_template, body="Bank Demo: Dear [customerName].")

    assert any("balance, dueDate" in text for text in messages_of(response))


def test_the_email_html_body_is_sanitised_on_save(staff_client, email_template):
    submit(
        staff_client,
        email_template,
        html_body='<p onclick="steal()">Dear [customerName]</p><script>alert(1)</script>'
        '<a href="javascript:alert(1)">pay</a><img src=x onerror="alert(1)">',
    )

    saved = ContentTemplate.objects.get(pk=email_template.pk).html_body
    assert "<p>Dear [customerName]</p>" in saved
    for dangerous in ("onclick", "<script", "javascript:", "onerror"):
        assert dangerous not in saved


def test_an_email_needs_a_subject(staff_client, email_template):
    response = submit(staff_client, email_template, subject="")

    assert "An email needs a subject." in str(response.context["adminform"].form.errors)


def test_restoring_an_old_version_makes_a_new_one_with_its_content(staff_client, sms_template):
    submit(staff_client, sms_template, body="Bank Demo: second [customerName] [balance] [dueDate]")

    response = staff_client.post(
        f"/admin/templates_app/contenttemplate/{sms_template.pk}/versions/1/restore/", follow=True
    )

    assert "Version 1 restored as version 3." in messages_of(response)
    sms_template.refresh_from_db()
    assert sms_template.body.startswith("Bank Demo: Dear")
    assert sms_template.versions.get(number=3).change_summary == "restored version 1"


def test_the_version_page_shows_an_escaped_diff(staff_client, sms_template):
    submit(staff_client, sms_template, body="Bank Demo <script>alert(1)</script> [customerName]")

    response = staff_client.get(
        f"/admin/templates_app/contenttemplate/{sms_template.pk}/versions/2/"
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page
    assert "changed body" in page


def test_the_change_page_lists_the_history(staff_client, sms_template):
    submit(staff_client, sms_template, body="Bank Demo: v2 [customerName] [balance] [dueDate]")

    page = staff_client.get(change_url(sms_template)).content.decode()

    assert "changed body" in page
    assert f"/admin/templates_app/contenttemplate/{sms_template.pk}/versions/2/" in page


def test_versions_cannot_be_edited_in_the_admin(staff_client, sms_template):
    assert TemplateVersion.objects.count() == 1
    response = staff_client.get("/admin/templates_app/templateversion/")

    assert response.status_code == 404


def test_line_breaks_posted_as_crlf_are_stored_as_lf(staff_client, sms_template):
    submit(
        staff_client, sms_template, body="Bank Demo:\r\nDear [customerName]\r\n[balance] [dueDate]"
    )

    assert (
        sms_template.versions.latest().body
        == "Bank Demo:\nDear [customerName]\n[balance] [dueDate]"
    )
