"""The shared validator of notification parameters (used by the API and batches)."""

import random
from datetime import datetime
from decimal import Decimal

import phonenumbers
import pytest

from clients.parameter_validation import (
    _local_mobile_e164,
    java_date_format_to_strftime,
    parse_date,
    reference_errors,
    validate_parameters,
)
from tests.factories import ApplicationFactory, FieldFactory


@pytest.fixture
def fields(db):
    application = ApplicationFactory(code="ABC")
    return list(application.fields.all())


def validate(fields, **values):
    return validate_parameters(fields=fields, values=values, application_code="ABC")


GOOD = {
    "customerName": "Budi Śantoso & Sons",
    "balance": "1230000",
    "dueDate": "09-09-2015",
    "msisdn": "081234567890",
    "email": "budi@example.co.id",
}


def test_good_values_are_parsed_by_type(fields):
    result = validate(fields, **GOOD)

    assert result.is_valid, result.errors
    assert result.values == {
        "customerName": "Budi Śantoso & Sons",
        "balance": 1230000,
        "dueDate": datetime(2015, 9, 9),
        "msisdn": "+6281234567890",
        "email": "budi@example.co.id",
    }


def test_optional_fields_may_be_missing_or_empty(fields):
    values = {**GOOD, "msisdn": ""}
    del values["email"]

    result = validate(fields, **values)

    assert result.is_valid
    assert "msisdn" not in result.values


def test_every_problem_is_reported_at_once_by_field_name(fields):
    result = validate(
        fields, balance="12,5", dueDate="2015-09-09", msisdn="12", email="nope", colour="red"
    )

    assert not result.is_valid
    assert set(result.errors) == {"customerName", "balance", "dueDate", "msisdn", "email", "colour"}
    assert result.errors["customerName"] == ["This field is required."]
    assert "whole number" in result.errors["balance"][0]
    assert "dd-MM-yyyy" in result.errors["dueDate"][0]
    assert "phone number" in result.errors["msisdn"][0]
    assert "email address" in result.errors["email"][0]
    assert "Unknown field" in result.errors["colour"][0]


@pytest.mark.parametrize(
    ("field_name", "bad_value"),
    [
        ("balance", "1.5"),
        ("balance", "abc"),
        ("balance", " 12"),
        ("balance", "1" * 19),
        ("dueDate", "9-9-2015"),  # the pre-agreed format has two-digit days
        ("dueDate", "31-02-2015"),
        ("dueDate", "09/09/2015"),
        ("msisdn", "+1 555"),
        ("msisdn", "phone"),
        ("email", "budi@"),
        ("customerName", "John\x00Doe"),
        ("customerName", "x" * 101),
    ],
)
def test_bad_values_are_refused(fields, field_name, bad_value):
    result = validate(fields, **{**GOOD, field_name: bad_value})

    assert list(result.errors) == [field_name]


def test_decimal_fields_accept_fractions(db):
    from tests.factories import FieldFactory

    amount = FieldFactory(name="amount", type="decimal")

    assert validate([amount], amount="1230000.50").values == {"amount": Decimal("1230000.50")}
    assert "amount" in validate([amount], amount="1,5").errors


def test_max_length_counts_characters_not_bytes(db):
    from tests.factories import FieldFactory

    name = FieldFactory(name="name", max_length=5)

    assert validate([name], name="Śąćęł").is_valid
    assert "At most 5 characters" in validate([name], name="Śąćęłx").errors["name"][0]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("dd-MM-yyyy", "%d-%m-%Y"),
        ("yyyy-MM-dd HH:mm:ss", "%Y-%m-%d %H:%M:%S"),
        ("ddMMyy", "%d%m%y"),
    ],
)
def test_date_patterns_translate_to_strftime(pattern, expected):
    assert java_date_format_to_strftime(pattern) == expected


def strptime_exactly(text: str, pattern: str) -> datetime | None:
    """The reading parse_date replaced: strptime, then strftime to insist on the exact form."""
    strftime_format = java_date_format_to_strftime(pattern)
    try:
        parsed = datetime.strptime(text, strftime_format)
    except ValueError:
        return None
    return parsed if parsed.strftime(strftime_format) == text else None


@pytest.mark.parametrize(
    "pattern", ["dd-MM-yyyy", "yyyy-MM-dd HH:mm:ss", "ddMMyy", "MM/dd/yyyy", "dd.MM.yy HH:mm"]
)
def test_parse_date_reads_what_strptime_read_exactly_and_refuses_the_rest(pattern):
    generator = random.Random(pattern)
    texts = []
    for _ in range(4000):
        moment = datetime(
            generator.randint(1000, 2999),
            generator.randint(1, 12),
            generator.randint(1, 28),
            generator.randint(0, 23),
            generator.randint(0, 59),
            generator.randint(0, 59),
        )
        text = moment.strftime(java_date_format_to_strftime(pattern))
        # Also near misses: unpadded parts, impossible days and months, stray characters.
        mangled = generator.choice(
            [
                text,
                text.replace("0", "", 1),
                text.replace("28", "31", 1),
                text.replace("12", "13", 1),
                text + "0",
                " " + text,
                text.replace("-", "/", 1),
            ]
        )
        texts.append(mangled)

    for text in texts:
        expected = strptime_exactly(text, pattern)
        if expected is None:
            with pytest.raises(ValueError):
                parse_date(text, pattern)
        else:
            assert parse_date(text, pattern) == expected, text


def test_a_date_pattern_part_given_twice_is_refused():
    with pytest.raises(ValueError, match="'dd' appears twice"):
        java_date_format_to_strftime("dd-MM-dd")


def test_an_unknown_date_pattern_letter_is_named():
    with pytest.raises(ValueError, match="'Q'"):
        java_date_format_to_strftime("dd-Q-yyyy")


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("", "required"),
        (None, "required"),
        ("x" * 101, "At most 100"),
        ("REF\n1", "Control characters"),
        ("REF\t1", "Control characters"),
    ],
)
def test_bad_references_are_refused(reference, problem):
    assert problem in " ".join(reference_errors(reference))


@pytest.mark.parametrize("reference", ["UNIQ-REFERENCE-ID", "x" * 100, "Budi Śantoso & Sons+=/"])
def test_good_references_pass(reference):
    assert reference_errors(reference) == []


def _phonenumbers_e164(raw: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, "ID")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [("081234567890", "+6281234567890"), ("+6281234567890", "+6281234567890")],
)
def test_common_indonesian_mobile_numbers_take_the_fast_path(raw, e164):
    assert _local_mobile_e164(raw) == e164


def test_the_phone_fast_path_agrees_with_phonenumbers_wherever_it_answers():
    generator = random.Random(20261125)
    answered = 0
    for _ in range(20_000):
        prefix = generator.choice(["0", "+62", "62", "+6", "00", ""])
        first = generator.choice("8881295")
        rest = "".join(generator.choice("0123456789") for _ in range(generator.randint(5, 13)))
        raw = prefix + first + rest
        fast = _local_mobile_e164(raw)
        if fast:
            answered += 1
            assert fast == _phonenumbers_e164(raw), raw
    assert answered > 1_000


@pytest.mark.parametrize("raw", ["0812-3456-7890", "(0812) 34567890", "+62 812 3456 7890"])
def test_numbers_in_other_shapes_are_still_parsed_by_phonenumbers(raw):
    assert _local_mobile_e164(raw) == ""
    assert validate_parameters(
        fields=[FieldFactory.build(name="msisdn", type="phone")],
        values={"msisdn": raw},
        application_code="ABC",
    ).values == {"msisdn": "+6281234567890"}


def test_a_field_of_a_type_unknown_here_refuses_its_value_and_the_others_are_checked(db):
    application = ApplicationFactory(code="ABC")
    FieldFactory(application=application, name="legacy", type="barcode", required=False)

    result = validate(list(application.fields.all()), **{**GOOD, "legacy": "X1", "balance": "1x"})

    assert set(result.errors) == {"legacy", "balance"}
    assert "Field type 'barcode' is not known" in result.errors["legacy"][0]


@pytest.mark.parametrize(
    ("field_type", "raw", "message"),
    [
        ("integer", "NaN", "Expected a whole number"),
        ("integer", "Infinity", "Expected a whole number"),
        ("integer", "1e100", "Expected a whole number"),
        ("integer", "١٢٣", "Expected a whole number"),  # Arabic-Indic digits
        ("integer", "9" * 19, "At most 18 digits"),
        ("decimal", "NaN", "Expected a number"),
        ("decimal", "-Infinity", "Expected a number"),
        ("decimal", "1e100", "Expected a number"),
        ("decimal", "1E-7", "Expected a number"),
        ("decimal", "\u0661\u0662\u0663.\u0665", "Expected a number"),  # Arabic-Indic
        ("decimal", "9" * 19 + ".5", "At most 18 digits"),
        ("decimal", "1.1234567", "At most 6 decimals"),
    ],
)
def test_numbers_the_platform_cannot_store_or_format_are_refused_with_a_clear_message(
    field_type, raw, message
):
    result = validate_parameters(
        fields=[FieldFactory.build(name="amount", type=field_type)],
        values={"amount": raw},
        application_code="ABC",
    )

    assert not result.is_valid
    assert message in result.errors["amount"][0]


@pytest.mark.parametrize(
    ("field_type", "raw", "value"),
    [
        ("integer", "-" + "9" * 18, -int("9" * 18)),
        ("decimal", "9" * 18 + ".123456", Decimal("9" * 18 + ".123456")),
        ("decimal", "+0.5", Decimal("0.5")),
    ],
)
def test_the_largest_numbers_the_platform_formats_pass(field_type, raw, value):
    result = validate_parameters(
        fields=[FieldFactory.build(name="amount", type=field_type)],
        values={"amount": raw},
        application_code="ABC",
    )

    assert result.values == {"amount": value}


def test_the_reference_limit_is_the_one_of_every_column_a_reference_lands_in():
    from batches.models import RejectedLine
    from clients.parameter_validation import REFERENCE_MAX_LENGTH
    from notifications.models import Notification

    for model in (Notification, RejectedLine):
        assert model._meta.get_field("reference").max_length == REFERENCE_MAX_LENGTH


def test_a_value_longer_than_any_parameter_may_be_is_refused_even_without_a_field_limit(
    fields, settings
):
    # customerName's own limit (100) aside, a field without one is capped the same way,
    # so a batch line never carries a value the API would refuse.
    settings.API_MAX_PARAMETER_CHARS = 50
    name = next(field for field in fields if field.name == "customerName")
    name.max_length = None

    result = validate(fields, **{**GOOD, "customerName": "N" * 51})

    assert result.errors == {"customerName": ["At most 50 characters (got 51)."]}
