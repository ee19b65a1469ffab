"""A result file opened in a spreadsheet never runs a value as a formula."""

import re

import pytest

from clients.spreadsheet_safe import spreadsheet_safe
from notifications.models import Notification
from tests.batches.conftest import line, seven_zip
from tests.batches.test_ingest import ingest, result_rows

pytestmark = pytest.mark.django_db

# What Excel, LibreOffice and Google Sheets evaluate: a cell starting with one of these.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# ...unless it reads as a plain number.
NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")

HOSTILE_REFERENCES = [
    '=HYPERLINK("http://evil")',
    "@SUM(1+1)",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "\t=1+1",  # rejected (a control character), and quoted in its row all the same
    "\r=1+1",
]
NUMBER_REFERENCES = ["-150000", "+6281234567890"]
# A carriage return inside a value: unquoted, a spreadsheet would start a row with `=1+1` there.
MID_VALUE_CR = "R-CR\r=1+1"


def runs_as_formula(cell: str) -> bool:
    return cell.startswith(FORMULA_STARTS) and not NUMBER.fullmatch(cell)


def test_no_cell_of_a_result_file_runs_as_a_formula_in_a_spreadsheet(
    batch_home, batch_client, tmp_path
):
    references = HOSTILE_REFERENCES + NUMBER_REFERENCES + [MID_VALUE_CR]
    lines = [line(reference) for reference in references]
    # A rejected line whose message quotes the line: an unknown field named like a formula.
    lines.append(line("R-QUOTED", **{"@SUM(A1:A9)": "1"}))
    archive = seven_zip(tmp_path / "hostile.7z", "\n".join(lines) + "\n")

    batch = ingest(batch_client, "hostile.7z", archive.read_bytes())

    rows = result_rows(batch)[1:]
    assert [cell for row in rows for cell in row if runs_as_formula(cell)] == []
    assert [(row[1], row[2]) for row in rows] == [
        ('\'=HYPERLINK("http://evil")', "ACCEPTED"),
        ("'@SUM(1+1)", "ACCEPTED"),
        ("'+cmd|' /C calc'!A0", "ACCEPTED"),
        ("'-2+3", "ACCEPTED"),
        ("'\t=1+1", "REJECTED"),
        ("'\r=1+1", "REJECTED"),
        ("-150000", "ACCEPTED"),  # plain numbers: read as numbers, written as they are
        ("+6281234567890", "ACCEPTED"),
        (MID_VALUE_CR, "REJECTED"),  # one cell, the return inside it
        ("R-QUOTED", "REJECTED"),
    ]
    assert rows[-1][4].startswith("'@SUM(A1:A9): Unknown field")
    # Only the file is escaped: the notifications keep the references as sent.
    stored = set(Notification.objects.filter(batch=batch).values_list("reference", flat=True))
    assert stored == set(HOSTILE_REFERENCES[:4] + NUMBER_REFERENCES)


@pytest.mark.parametrize(
    "value",
    [*HOSTILE_REFERENCES, *NUMBER_REFERENCES, "'=1+1", "'quoted'", "plain", "", "-1.5", "-1e5"],
)
def test_removing_the_first_quote_of_a_quoted_cell_gives_the_value_back(value):
    cell = spreadsheet_safe(value)

    assert not runs_as_formula(cell)
    assert (cell[1:] if cell.startswith("'") else cell) == value
