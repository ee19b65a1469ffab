"""The content-template language, and rendering it.

`[fieldName]` inserts a notification's value; `[fieldName|filter|filter:arg]`
formats it; `[[` and `]]` write literal brackets. Template text is parsed once
into a `CompiledTemplate` (cached); rendering is then a join over its parts.

Client-supplied values are only ever data: they are inserted after parsing,
so a customer called "[balance]" or "{{ secret }}" is printed as given. Nothing
here hands text to Django's template engine or to str.format.
"""

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from notifications.validation import parse_date

FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

MONTHS_ID = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
]
MONTHS_ID_SHORT = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "Mei",
    "Jun",
    "Jul",
    "Agu",
    "Sep",
    "Okt",
    "Nov",
    "Des",
]
DAYS_ID = ["Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"]


class TemplateSyntaxError(ValueError):
    """Text that is not a template; the message names the line and column."""


@dataclass(frozen=True)
class FilterCall:
    name: str
    argument: str | None


@dataclass(frozen=True)
class Placeholder:
    field: str
    filters: tuple[FilterCall, ...]
    line: int
    column: int

    @property
    def source(self) -> str:
        calls = "".join(
            f"|{c.name}" + (f":{c.argument}" if c.argument is not None else "")
            for c in self.filters
        )
        return f"[{self.field}{calls}]"

    @property
    def where(self) -> str:
        return f"{self.source} at line {self.line}, column {self.column}"


@dataclass(frozen=True)
class CompiledTemplate:
    parts: tuple[str | Placeholder, ...]

    @property
    def placeholders(self) -> list[Placeholder]:
        return [part for part in self.parts if isinstance(part, Placeholder)]

    @property
    def literal_text(self) -> str:
        return "".join(part for part in self.parts if isinstance(part, str))


@lru_cache(maxsize=4096)
def compile_template(text: str) -> CompiledTemplate:
    """Parse template text; raises TemplateSyntaxError for unbalanced brackets or bad names."""
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    position = 0
    while position < len(text):
        if text.startswith("[[", position) or text.startswith("]]", position):
            literal.append(text[position])
            position += 2
        elif text[position] == "]":
            raise TemplateSyntaxError(
                f"A ']' without its '[' at {_line_column(text, position)}; write ]] for a bracket."
            )
        elif text[position] == "[":
            end = text.find("]", position + 1)
            opening = text.find("[", position + 1)
            if end == -1 or (opening != -1 and opening < end):
                raise TemplateSyntaxError(
                    f"A '[' that is never closed at {_line_column(text, position)}; "
                    "write [[ for a bracket."
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_placeholder(text, position, text[position + 1 : end]))
            position = end + 1
        else:
            literal.append(text[position])
            position += 1
    if literal:
        parts.append("".join(literal))
    return CompiledTemplate(tuple(parts))


def _placeholder(text: str, position: int, inner: str) -> Placeholder:
    line, column = _line_and_column(text, position)
    name, *filter_texts = inner.split("|")
    name = name.strip()
    if not FIELD_NAME.match(name):
        raise TemplateSyntaxError(
            f"[{inner}] at line {line}, column {column} does not start with a field name."
        )
    filters = []
    for filter_text in filter_texts:
        filter_name, separator, argument = filter_text.partition(":")
        filters.append(FilterCall(filter_name.strip(), argument if separator else None))
    return Placeholder(name, tuple(filters), line, column)


def _line_and_column(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, column


def _line_column(text: str, position: int) -> str:
    line, column = _line_and_column(text, position)
    return f"line {line}, column {column}"


# Filters ------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """A formatter; `field_types` None means any field; type filters come first."""

    apply: Callable[[str, str | None, "FieldFormat"], str]
    field_types: frozenset[str] | None = None
    field_kind: str = ""  # "a number field": for messages
    argument_example: str = ""  # set when the filter needs an argument


@dataclass(frozen=True)
class FieldFormat:
    """What rendering needs to know of a field: its type and date pattern."""

    type: str
    date_format: str = ""


def _group_thousands(digits: str) -> str:
    groups = []
    while len(digits) > 3:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    groups.insert(0, digits)
    return ".".join(groups)


def _indonesian_number(value: Decimal, places: int | None) -> str:
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    whole, _, fraction = f"{abs(value):f}".partition(".")
    text = sign + _group_thousands(whole)
    return f"{text},{fraction}" if fraction else text


def _as_decimal(value: str) -> Decimal | None:
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def _rupiah(value: str, argument: str | None, field: FieldFormat) -> str:
    """1230000 -> 1.230.000: whole rupiah, Indonesian grouping."""
    number = _as_decimal(value)
    return value if number is None else _indonesian_number(number, 0)


def _number(value: str, argument: str | None, field: FieldFormat) -> str:
    """1230000.5 -> 1.230.000,5: Indonesian grouping, decimals kept."""
    number = _as_decimal(value)
    return value if number is None else _indonesian_number(number, None)


_DATE_PATTERN_PART = re.compile(r"yyyy|yy|MMMM|MMM|MM|M|dd|d|EEEE|EEE|HH|H|mm|ss|'[^']*'|.")


def format_date(moment: datetime, pattern: str) -> str:
    """Format like d MMMM yyyy -> 9 September 2015, with Indonesian month and day names."""
    out = []
    for token in _DATE_PATTERN_PART.findall(pattern):
        out.append(_DATE_PARTS.get(token, lambda m, t=token: t.strip("'"))(moment))
    return "".join(out)


_DATE_PARTS: dict[str, Callable[[datetime], str]] = {
    "yyyy": lambda m: f"{m.year:04d}",
    "yy": lambda m: f"{m.year % 100:02d}",
    "MMMM": lambda m: MONTHS_ID[m.month - 1],
    "MMM": lambda m: MONTHS_ID_SHORT[m.month - 1],
    "MM": lambda m: f"{m.month:02d}",
    "M": lambda m: str(m.month),
    "dd": lambda m: f"{m.day:02d}",
    "d": lambda m: str(m.day),
    "EEEE": lambda m: DAYS_ID[m.weekday()],
    "EEE": lambda m: DAYS_ID[m.weekday()][:3],
    "HH": lambda m: f"{m.hour:02d}",
    "H": lambda m: str(m.hour),
    "mm": lambda m: f"{m.minute:02d}",
    "ss": lambda m: f"{m.second:02d}",
}
_DATE_LETTERS = set("yMdEHms")


def date_pattern_errors(pattern: str) -> list[str]:
    unknown = {
        token
        for token in _DATE_PATTERN_PART.findall(pattern)
        if token not in _DATE_PARTS and not token.startswith("'") and token in _DATE_LETTERS
    }
    letters = {c for c in pattern if c.isalpha()} - _DATE_LETTERS
    problems = sorted(unknown | letters)
    return [f"unknown date pattern letter(s) {', '.join(problems)}"] if problems else []


def _date(value: str, argument: str | None, field: FieldFormat) -> str:
    try:
        moment = parse_date(value, field.date_format)
    except ValueError:
        return value
    return format_date(moment, argument or "")


def _default(value: str, argument: str | None, field: FieldFormat) -> str:
    return value if value else (argument or "")


FILTERS: dict[str, Filter] = {
    "rupiah": Filter(_rupiah, frozenset({"integer", "decimal"}), "a number field"),
    "number": Filter(_number, frozenset({"integer", "decimal"}), "a number field"),
    "date": Filter(_date, frozenset({"date"}), "a date field", "[dueDate|date:d MMMM yyyy]"),
    "upper": Filter(lambda value, argument, field: value.upper()),
    "lower": Filter(lambda value, argument, field: value.lower()),
    "title": Filter(lambda value, argument, field: value.title()),
    "default": Filter(_default, argument_example="[name|default:Customer]"),
}


def placeholder_problems(
    compiled: CompiledTemplate, fields: Mapping[str, FieldFormat]
) -> list[str]:
    """Every placeholder naming an unknown field, or a filter that is unknown or misused."""
    problems = []
    for placeholder in compiled.placeholders:
        field = fields.get(placeholder.field)
        if field is None:
            problems.append(
                f"{placeholder.where}: the application has no field {placeholder.field!r}."
            )
            continue
        for index, call in enumerate(placeholder.filters):
            problem = _filter_problem(call, index, field)
            if problem:
                problems.append(f"{placeholder.where}: {problem}")
    return problems


def _filter_problem(call: FilterCall, index: int, field: FieldFormat) -> str:
    spec = FILTERS.get(call.name)
    if spec is None:
        return f"unknown filter {call.name!r}; known: {', '.join(FILTERS)}."
    if spec.argument_example and not call.argument:
        return f"{call.name} needs an argument, e.g. {spec.argument_example}."
    if spec.field_types is not None:
        if field.type not in spec.field_types:
            return f"{call.name} works on {spec.field_kind}, not on a {field.type} field."
        if index != 0:
            return f"{call.name} must be the first filter."
    if call.name == "date" and (errors := date_pattern_errors(call.argument or "")):
        return f"date: {errors[0]}."
    return ""


# Rendering ------------------------------------------------------------------

Renderer = Callable[[Mapping[str, str]], str]


def prepare(text: str, fields: Mapping[str, FieldFormat], *, escape_html: bool = False) -> Renderer:
    """A function that fills this template with a notification's values (cached).

    The function takes values (field name -> text as the client sent it). A
    missing value renders as "" (or its default filter's text). It never
    fails at send time: a value a filter cannot read is printed as is. With
    escape_html, every inserted value is HTML-escaped (email HTML bodies).
    Raises TemplateSyntaxError for text that does not parse.
    """
    return _prepare(text, tuple(sorted(fields.items())), escape_html)


def render(
    text: str, values: Mapping[str, str], fields: Mapping[str, FieldFormat], **options
) -> str:
    return prepare(text, fields, **options)(values)


@lru_cache(maxsize=4096)
def _prepare(text: str, fields_key: tuple, escape_html: bool) -> Renderer:
    fields = dict(fields_key)
    steps = tuple(
        part
        if isinstance(part, str)
        else _placeholder_step(part, fields.get(part.field, FieldFormat("text")), escape_html)
        for part in compile_template(text).parts
    )

    def fill(values: Mapping[str, str]) -> str:
        return "".join([step if step.__class__ is str else step(values) for step in steps])

    return fill


def _placeholder_step(placeholder: Placeholder, field: FieldFormat, escape_html: bool):
    name = placeholder.field
    calls = [
        (FILTERS[call.name].apply, call.argument)
        for call in placeholder.filters
        if call.name in FILTERS
    ]

    def step(values):
        value = values.get(name) or ""
        for apply, argument in calls:
            value = apply(value, argument, field)
        return html.escape(value) if escape_html else value

    return step


def placeholder_values(
    text: str, values: Mapping[str, str], fields: Mapping[str, FieldFormat]
) -> list[str]:
    """Each placeholder of the template filled in, in order (for providers' template APIs).

    WhatsApp template messages take the values of the approved template's
    {{1}}, {{2}}, … rather than a finished text.
    """
    return [
        render(placeholder.source, values, fields)
        for placeholder in compile_template(text).placeholders
    ]
