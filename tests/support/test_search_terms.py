"""What the search box makes of a term: a reference, and perhaps a phone number or an email."""

import pytest

from notifications.search import TermKind, search_term_read

E164 = "+6281234567890"


@pytest.mark.parametrize(
    "written",
    [
        "081234567890",
        "6281234567890",
        "+6281234567890",
        "+62 812-3456-7890",
        "0812-3456-7890",
        "0812 3456 7890",
        "(0812) 3456-7890",
        "62 812 3456 7890",
        "  0812.3456.7890  ",
    ],
)
def test_a_phone_number_in_any_common_writing_is_read_in_e164(written):
    term = search_term_read(written)

    assert term.kind == TermKind.PHONE
    assert term.recipient == E164
    assert term.reference == written.strip()  # a numeric reference is still tried


def test_a_short_number_keeps_its_digits():
    assert search_term_read("0812-3456-789").recipient == "+628123456789"


def test_an_email_address_is_read_case_insensitively():
    term = search_term_read(" Budi.Santoso@Example.CO.ID ")

    assert term.kind == TermKind.EMAIL
    assert term.recipient == "budi.santoso@example.co.id"


@pytest.mark.parametrize("text", ["INV-001234", "12345", "not@an email", "0812-ABCD-7890", "+62"])
def test_anything_else_is_only_a_reference(text):
    term = search_term_read(text)

    assert term.kind == TermKind.REFERENCE
    assert term.recipient == ""
    assert term.reference == text
