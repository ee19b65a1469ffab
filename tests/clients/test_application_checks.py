"""An application's checks against its saved fields: its sample values and its expiry field."""

import json

import pytest
from django.core.exceptions import ValidationError

from clients.applications import application_check
from clients.models import Application
from tests.admin_forms import form_data
from tests.factories import ApplicationFactory


def test_sample_values_must_pass_the_field_schema(db):
    application = ApplicationFactory(code="ABC")
    application.sample_values = {"customerName": "John", "balance": "a lot", "dueDate": "x"}

    problems = application_check(application=application)

    assert problems.keys() == {"sample_values"}
    assert problems["sample_values"].startswith("The sample does not pass the schema: ")
    assert "balance" in problems["sample_values"]
    assert "dueDate" in problems["sample_values"]


def test_a_sample_naming_a_field_the_application_lacks_is_refused(app_8002):
    app_8002.sample_values = {
        "customerName": "John",
        "balance": "1",
        "dueDate": "09-09-2035",
        "saldo": "1",
    }

    assert "saldo" in application_check(application=app_8002)["sample_values"]


def test_a_sample_that_passes_the_schema_and_an_empty_one_pass(app_8002):
    app_8002.sample_values = {"customerName": "John", "balance": "1", "dueDate": "09-09-2035"}
    assert application_check(application=app_8002) == {}

    app_8002.sample_values = {}
    assert application_check(application=app_8002) == {}


def test_a_new_application_passes_having_no_fields_yet(client_8002):
    application = Application(client=client_8002, code="NEW", sample_values={"balance": "x"})

    assert application_check(application=application) == {}


@pytest.mark.parametrize("field", ["customerName", "dateOfBirth"], ids=["not a date", "unknown"])
def test_the_expiry_field_must_be_one_of_the_applications_date_fields(app_8002, field):
    app_8002.expire_after_field = field

    assert application_check(application=app_8002) == {
        "expire_after_field": "Name one of this application's date fields."
    }

    app_8002.expire_after_field = "dueDate"
    assert application_check(application=app_8002) == {}


def test_the_model_alone_still_refuses_a_sample_that_is_not_an_object_of_texts(app_8002):
    app_8002.sample_values = {"balance": 1230000}

    with pytest.raises(ValidationError, match="A JSON object of texts"):
        app_8002.clean()


def change_application(http, application, **changes):
    url = f"/admin/clients/application/{application.pk}/change/"
    data = form_data(http.get(url))
    data.update(changes)
    return http.post(url, data)


def test_the_application_page_refuses_a_sample_that_fails_the_schema(client, staff_8002, app_8002):
    client.force_login(staff_8002)

    response = change_application(
        client, app_8002, sample_values=json.dumps({"customerName": "John", "balance": "a lot"})
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["sample_values"]
    assert errors[0].startswith("The sample does not pass the schema: balance: ")
    app_8002.refresh_from_db()
    assert app_8002.sample_values != {"customerName": "John", "balance": "a lot"}


def test_the_application_page_saves_a_sample_that_passes_the_schema(client, staff_8002, app_8002):
    client.force_login(staff_8002)
    sample = {"customerName": "John", "balance": "1230000", "dueDate": "09-09-2035"}

    response = change_application(client, app_8002, sample_values=json.dumps(sample))

    assert response.status_code == 302
    app_8002.refresh_from_db()
    assert app_8002.sample_values == sample
