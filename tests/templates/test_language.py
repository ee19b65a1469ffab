"""The template language: placeholders, filters, literal brackets, and values as data."""

import pytest

from clients.parameter_validation import FieldFormat
from templates_app.template_language import (
    TemplateSyntaxError,
    compile_template,
    placeholder_problems,
    render,
)

FIELDS = {
    "customerName": FieldFormat("text"),
    "nickname": FieldFormat("text"),
    "balance": FieldFormat("integer"),
    "fee": FieldFormat("decimal"),
    "dueDate": FieldFormat("date", "dd-MM-yyyy"),
}
VALUES = {
    "customerName": "John Doe",
    "balance": "1230000",
    "fee": "1234567.5",
    "dueDate": "09-09-2015",
}


def fill(text, **values):
    return render(text, {**VALUES, **values}, FIELDS)


def problems(text):
    return placeholder_problems(compile_template(text), FIELDS)


def test_the_integration_documents_example_renders():
    text = (
        "Dear Mr. [customerName],\n\nWe would like to inform you that you have a balance of "
        "Rp [balance] due on [dueDate]. Please ignore if you have paid."
    )

    assert fill(text) == (
        "Dear Mr. John Doe,\n\nWe would like to inform you that you have a balance of "
        "Rp 1230000 due on 09-09-2015. Please ignore if you have paid."
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("[balance|rupiah]", "1.230.000"),
        ("[fee|rupiah]", "1.234.568"),
        ("[fee|number]", "1.234.567,5"),
        ("[balance|number]", "1.230.000"),
        ("[dueDate|date:d MMMM yyyy]", "9 September 2015"),
        ("[dueDate|date:dd/MM/yy]", "09/09/15"),
        ("[dueDate|date:EEEE, d MMM yyyy]", "Rabu, 9 Sep 2015"),
        ("[customerName|upper]", "JOHN DOE"),
        ("[customerName|lower]", "john doe"),
        ("[customerName|title]", "John Doe"),
        ("[nickname|default:Bapak/Ibu]", "Bapak/Ibu"),
        ("[nickname|default:pelanggan|upper]", "PELANGGAN"),
        ("[customerName|default:Bapak/Ibu]", "John Doe"),
    ],
)
def test_each_filter_formats_its_value(template, expected):
    assert fill(template) == expected


def test_negative_amounts_keep_their_sign():
    assert fill("[balance|rupiah]", balance="-1230000") == "-1.230.000"


def test_double_brackets_write_literal_brackets():
    assert fill("[[customerName]] is [customerName] ]]") == "[customerName] is John Doe ]"


@pytest.mark.parametrize(
    "value",
    ["[balance]", "{{ secret }}", "{balance}", "<script>alert(1)</script>", "Śantoso & 子", "%s"],
)
def test_client_values_are_printed_as_given(value):
    assert fill("Dear [customerName]!", customerName=value) == f"Dear {value}!"


def test_values_are_html_escaped_only_where_asked():
    text = "<p>Dear [customerName]</p>"
    values = {**VALUES, "customerName": "<b>Budi</b> & Sons"}

    assert render(text, values, FIELDS, escape_html=True) == (
        "<p>Dear &lt;b&gt;Budi&lt;/b&gt; &amp; Sons</p>"
    )
    assert render(text, values, FIELDS) == "<p>Dear <b>Budi</b> & Sons</p>"


def test_a_missing_optional_value_renders_empty():
    assert fill("Hi [nickname]!") == "Hi !"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hi [customerName", "never closed at line 1, column 4"),
        ("Hi customerName]", "without its '[' at line 1, column 16"),
        ("Hi [customer[Name]", "never closed"),
        ("Hi [ ]", "does not start with a field name"),
        ("Hi [1abc]", "does not start with a field name"),
    ],
)
def test_unbalanced_or_empty_brackets_are_syntax_errors_with_a_position(template, message):
    with pytest.raises(TemplateSyntaxError, match=message.replace("[", r"\[")):
        compile_template(template)


def test_an_unknown_field_is_named_with_its_position():
    assert problems("Dear [customerName],\nyou owe [balanse].") == [
        "[balanse] at line 2, column 9: the application has no field 'balanse'."
    ]


def test_an_unknown_filter_is_an_error():
    assert "unknown filter 'currency'" in problems("[balance|currency]")[0]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("[customerName|rupiah]", "rupiah works on a number field, not on a text field"),
        ("[balance|date:d MMMM yyyy]", "date works on a date field, not on a integer field"),
        ("[dueDate|number]", "number works on a number field, not on a date field"),
        ("[dueDate|date]", "date needs an argument"),
        ("[nickname|default]", "default needs an argument"),
        ("[dueDate|date:d QQQ yyyy]", "unknown date pattern letter(s) Q"),
        ("[balance|upper|rupiah]", "rupiah must be the first filter"),
    ],
)
def test_filters_must_fit_the_fields_type(template, message):
    assert message in " ".join(problems(template))


def test_a_good_template_has_no_problems():
    assert problems("[customerName|title] [balance|rupiah] [dueDate|date:d MMMM yyyy]") == []


def test_compiling_is_cached():
    assert compile_template("Hi [customerName]") is compile_template("Hi [customerName]")
