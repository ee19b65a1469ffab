"""A value a filter cannot format is a RenderError naming the placeholder, never a crash.

The dispatcher fails that one delivery with RENDER_ERROR; anything other than
a RenderError (decimal.InvalidOperation, a huge string) would instead kill the
task holding every other delivery claimed with it.
"""

import pytest

from clients.parameter_validation import FieldFormat
from templates_app.template_language import RenderError, placeholder_values, render

FIELDS = {
    "balance": FieldFormat("integer"),
    "fee": FieldFormat("decimal"),
    "dueDate": FieldFormat("date", "dd-MM-yyyy"),
    "nickname": FieldFormat("text"),
}
PREVIEW_URL = "/admin/templates_app/contenttemplate/preview/"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("NaN", "'NaN' is not a number"),
        ("-sNaN", "'-sNaN' is not a number"),
        ("Infinity", "'Infinity' is not a number"),
        ("-inf", "'-inf' is not a number"),
        ("n/a", "'n/a' is not a number"),
        ("1e100", "'1e100' has more than 18 digits before the decimal point"),
        ("1e999999999", "'1e999999999' has more than 18 digits before the decimal point"),
        ("1e-999999999", "'1e-999999999' has more than 18 digits after the decimal point"),
    ],
)
@pytest.mark.parametrize("template", ["[balance|rupiah]", "[fee|number]"])
def test_a_value_no_amount_can_be_made_of_is_a_render_error(template, value, problem):
    field = template[1:].split("|")[0]

    with pytest.raises(RenderError) as raised:
        render(f"Rp {template}", {field: value}, FIELDS)

    assert str(raised.value) == f"{template} at line 1, column 4: {problem}."
    assert isinstance(raised.value, ValueError)


def test_the_largest_amounts_the_validator_accepts_still_format():
    values = {"balance": "999999999999999999", "fee": "-999999999999999999.999999"}

    assert render("[balance|rupiah] [fee|number]", values, FIELDS) == (
        "999.999.999.999.999.999 -999.999.999.999.999.999,999999"
    )


def test_a_date_not_written_as_the_fields_pattern_is_a_render_error():
    with pytest.raises(RenderError, match=r"'2015-09-09' is not a date written as dd-MM-yyyy"):
        render("due [dueDate|date:d MMMM yyyy]", {"dueDate": "2015-09-09"}, FIELDS)


def test_a_long_bad_value_is_shortened_in_the_message():
    with pytest.raises(RenderError) as raised:
        render("[balance|rupiah]", {"balance": "x" * 10_000}, FIELDS)

    assert len(str(raised.value)) < 200


def test_empty_values_still_render_empty_or_their_default():
    values = {"balance": "", "dueDate": ""}

    assert render("[balance|rupiah]|[dueDate|date:d MMMM yyyy]", values, FIELDS) == "|"
    assert render("[fee|number|default:-]", {}, FIELDS) == "-"


def test_whatsapp_template_values_raise_the_same_render_error():
    with pytest.raises(RenderError, match=r"\[balance\|rupiah\]"):
        placeholder_values("[nickname] owes [balance|rupiah]", {"balance": "NaN"}, FIELDS)


def test_a_sample_value_that_cannot_be_formatted_is_reported_by_the_preview(
    staff_client, sms_template, app_8002
):
    # Saved without the model's checks, as an older schema may have left it.
    app_8002.sample_values = {**app_8002.sample_values, "balance": "Infinity"}
    app_8002.save()

    answer = staff_client.post(
        PREVIEW_URL,
        {"application": app_8002.pk, "medium": "sms", "body": "Bank Demo Rp [balance|rupiah]"},
    )

    assert answer.status_code == 200
    assert answer.json()["errors"] == {
        "body": [
            "The application's sample values cannot be rendered: [balance|rupiah] at line 1, "
            "column 14: 'Infinity' is not a number."
        ]
    }
