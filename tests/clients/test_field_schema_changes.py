"""Changing an application's field schema in the admin re-checks the templates that use it.

A template is checked against the schema when it is saved; a field changed
afterwards (its type, its date pattern, its name, or removed) would otherwise
leave templates that fail at send time. The change is refused, naming each
template and placeholder that would break.
"""

import pytest

from clients.models import Field
from tests.admin_forms import form_data
from tests.factories import ContentTemplateFactory, UserFactory

SMS_BODY = "Bank Demo: [customerName], Rp [balance|rupiah] due [dueDate|date:d MMMM yyyy]."


@pytest.fixture
def templates(app_8002):
    return {
        "sms": ContentTemplateFactory(application=app_8002, medium="sms", body=SMS_BODY),
        "email": ContentTemplateFactory(
            application=app_8002,
            medium="email",
            subject="Tagihan [customerName]",
            body="Rp [balance|number]",
            html_body="<p>Rp [balance|rupiah]</p>",
        ),
    }


@pytest.fixture(params=["operator", "client_staff"])
def editor(request, client, operator_user, staff_8002):
    client.force_login(operator_user if request.param == "operator" else staff_8002)
    return client


def change_url(application) -> str:
    return f"/admin/clients/application/{application.pk}/change/"


def submit_fields(http, application, field_name, *, delete=False, **changes):
    """Post the application's change form with one row of its field inline changed."""
    data = form_data(http.get(change_url(application)))
    prefix = next(
        key.removesuffix("-name")
        for key, value in data.items()
        if key.startswith("fields-") and key.endswith("-name") and value == field_name
    )
    data.update({f"{prefix}-{name}": value for name, value in changes.items()})
    if delete:
        data[f"{prefix}-DELETE"] = "on"
    return http.post(change_url(application), data)


def schema_errors(response) -> list[str]:
    assert response.status_code == 200, "the change was saved"
    formset = next(
        f for f in response.context["inline_admin_formsets"] if f.formset.prefix == "fields"
    )
    return list(formset.formset.non_form_errors())


def test_a_formatted_number_field_cannot_become_text(editor, app_8002, templates):
    response = submit_fields(editor, app_8002, "balance", type="text")

    assert schema_errors(response) == [
        "This change would break templates that use the field; change them first.",
        "Email template, body: [balance|number] at line 1, column 4: "
        "number works on a number field, not on a text field.",
        "Email template, HTML body: [balance|rupiah] at line 1, column 7: "
        "rupiah works on a number field, not on a text field.",
        "SMS template, body: [balance|rupiah] at line 1, column 31: "
        "rupiah works on a number field, not on a text field.",
    ]
    assert Field.objects.get(application=app_8002, name="balance").type == "integer"


def test_a_field_templates_use_cannot_be_removed(editor, app_8002, templates):
    response = submit_fields(editor, app_8002, "dueDate", delete=True)

    assert "SMS template, body: [dueDate|date:d MMMM yyyy] at line 1, column 52: the " in (
        " ".join(schema_errors(response))
    )
    assert Field.objects.filter(application=app_8002, name="dueDate").exists()


def test_a_field_templates_use_cannot_be_renamed(editor, app_8002, templates):
    response = submit_fields(editor, app_8002, "customerName", name="fullName")

    errors = schema_errors(response)
    assert (
        "SMS template, body: [customerName] at line 1, column 12: the application has no "
        "field 'customerName'."
    ) in errors
    assert (
        "Email template, subject: [customerName] at line 1, column 9: the application "
        "has no field 'customerName'."
    ) in errors
    assert Field.objects.filter(application=app_8002, name="customerName").exists()


def test_the_date_pattern_of_a_formatted_date_cannot_change(editor, app_8002, templates):
    response = submit_fields(editor, app_8002, "dueDate", date_format="yyyy-MM-dd")

    assert schema_errors(response)[1] == (
        "SMS template, body: [dueDate|date:d MMMM yyyy] at line 1, column 52: reads dueDate "
        "written as dd-MM-yyyy; notifications already accepted in that form could no longer "
        "be formatted."
    )
    assert Field.objects.get(application=app_8002, name="dueDate").date_format == "dd-MM-yyyy"


def test_changes_that_keep_every_template_working_are_saved(editor, app_8002, templates):
    submit_fields(editor, app_8002, "balance", type="decimal")
    response = submit_fields(editor, app_8002, "customerName", max_length="50", required="")

    assert response.status_code == 302
    assert Field.objects.get(application=app_8002, name="balance").type == "decimal"
    assert Field.objects.get(application=app_8002, name="customerName").max_length == 50


def test_only_the_applications_own_templates_are_checked(editor, app_8002, app_8003):
    # 8003's template formats a balance too; 8002 has none that does.
    ContentTemplateFactory(
        application=app_8003, medium="sms", body="Rahasia 8003: Rp [balance|rupiah]"
    )
    ContentTemplateFactory(application=app_8002, medium="sms", body="Bank Demo: [balance]")

    response = submit_fields(editor, app_8002, "balance", type="text")

    assert response.status_code == 302
    assert Field.objects.get(application=app_8002, name="balance").type == "text"
    assert Field.objects.get(application=app_8003, name="balance").type == "integer"


def test_another_clients_templates_are_never_counted(client, client_8003, app_8002, app_8003):
    for application in (app_8002, app_8003):
        ContentTemplateFactory(application=application, medium="sms", body="Rp [balance|rupiah]")
    client.force_login(UserFactory(role="client_staff", clients=[client_8003]))

    errors = schema_errors(submit_fields(client, app_8003, "balance", type="text"))

    # One template is named: 8003's own. 8002's identical one is not looked at.
    assert errors[1:] == [
        "SMS template, body: [balance|rupiah] at line 1, column 4: "
        "rupiah works on a number field, not on a text field."
    ]
    assert Field.objects.get(application=app_8003, name="balance").type == "integer"
    assert Field.objects.get(application=app_8002, name="balance").type == "integer"


def test_a_template_formatting_a_field_thousands_of_times_gets_a_bounded_list(
    operator_client, app_8002
):
    ContentTemplateFactory(application=app_8002, medium="sms", body="[balance|rupiah] " * 3000)

    errors = schema_errors(submit_fields(operator_client, app_8002, "balance", type="text"))

    assert len(errors) == 22
    assert errors[-1] == "SMS template, body: …and 2,980 more problems."
