"""The content-template language, and rendering it.

`[fieldName]` inserts a notification's value; `[fieldName|filter|filter:arg]`
formats it; `[[` and `]]` write literal brackets. Template text is parsed once
into a `CompiledTemplate` (cached); rendering is then a join over its parts.

Client-supplied values are only ever data: they are inserted after parsing,
so a customer called "[balance]" or "{{ secret }}" is printed as given. Nothing
here hands text to Django's template engine or to str.format.

Limits: a template part longer than TEMPLATE_MAX_CHARACTERS is refused before
it is parsed, parsing is linear in the text, and the two caches (parsed and
prepared templates) hold at most TEMPLATE_CACHE_MAX_ENTRIES entries and
TEMPLATE_CACHE_MAX_BYTES estimated bytes each, per process.
"""

import contextlib
import html
import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import cachetools
from django.conf import settings

from clients.parameter_validation import FieldFormat, parse_date
from templates_app.sanitizing import sanitize_html

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


class TemplateTooLarge(TemplateSyntaxError):
    """Text longer than TEMPLATE_MAX_CHARACTERS: refused without being parsed."""


# The code a delivery that cannot be rendered fails with, first in its last error.
RENDER_ERROR = "RENDER_ERROR"


class RenderError(ValueError):
    """A value that a placeholder's filter cannot format; the message names both.

    Raised at send time for one notification's values (e.g. NaN for rupiah);
    the dispatcher fails that delivery alone with RENDER_ERROR.
    """


@dataclass(frozen=True, slots=True)
class FilterCall:
    name: str
    argument: str | None


@dataclass(frozen=True, slots=True)
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
    footprint: int = dataclass_field(default=0, compare=False)  # estimated bytes, for the caches

    @property
    def placeholders(self) -> list[Placeholder]:
        return [part for part in self.parts if isinstance(part, Placeholder)]

    @property
    def literal_text(self) -> str:
        return "".join(part for part in self.parts if isinstance(part, str))


def compile_template(text: str) -> CompiledTemplate:
    """Parse template text (cached).

    Raises TemplateTooLarge for text over TEMPLATE_MAX_CHARACTERS and
    TemplateSyntaxError for unbalanced brackets or bad names.
    """
    refuse_oversized(text)
    return _cached("compiled", text, lambda: parse_template(text))


def refuse_oversized(text: str) -> None:
    """Raise TemplateTooLarge if `text` is longer than a template part may be."""
    limit = settings.TEMPLATE_MAX_CHARACTERS
    if len(text) > limit:
        raise TemplateTooLarge(
            f"This text is {len(text):,} characters long; a template part may hold at most "
            f"{limit:,} (TEMPLATE_MAX_CHARACTERS)."
        )


# One token of template text: an escaped bracket, a placeholder, or a stray bracket.
_TOKEN = re.compile(r"\[\[|\]\]|\[([^\[\]]*)\]|[\[\]]")

# What a placeholder and each of its filters cost in memory beyond the text, in
# the parsed template (Placeholder, FilterCall) and in the prepared one (its
# step closure): measured with tracemalloc and rounded up, so that the caches'
# byte counts are not below what they hold (tests/templates check it).
PLACEHOLDER_BYTES, FILTER_BYTES = 200, 150
STEP_BYTES, STEP_FILTER_BYTES = 700, 250


def parse_template(text: str) -> CompiledTemplate:
    """Parse template text, without the cache or the size check.

    One pass over the text: the regular expression finds each bracket, and
    line numbers are counted as the pass goes (counting them from the start
    for each placeholder made 240 KB of placeholders take seconds). Raises
    TemplateSyntaxError.
    """
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    lines = _LineCounter(text)
    position = 0
    for match in _TOKEN.finditer(text):
        start, found = match.start(), match.group()
        literal.append(text[position:start])
        position = match.end()
        if found in ("[[", "]]"):
            literal.append(found[0])
        elif found == "]":
            raise TemplateSyntaxError(
                f"A ']' without its '[' at {lines.describe(start)}; write ]] for a bracket."
            )
        elif found == "[":
            raise TemplateSyntaxError(
                f"A '[' that is never closed at {lines.describe(start)}; write [[ for a bracket."
            )
        else:
            _add_literal(parts, literal)
            parts.append(_placeholder(match.group(1), *lines.at(start)))
    literal.append(text[position:])
    _add_literal(parts, literal)
    return CompiledTemplate(tuple(parts), _footprint(text, parts))


def _add_literal(parts: list, literal: list[str]) -> None:
    text = "".join(literal)
    literal.clear()
    if text:
        parts.append(text)


def _footprint(text: str, parts: list) -> int:
    """Estimated bytes of a parsed template: its text, literals and placeholders."""
    return sys.getsizeof(text) + sum(
        sys.getsizeof(part)
        if isinstance(part, str)
        else PLACEHOLDER_BYTES
        + sum(FILTER_BYTES + sys.getsizeof(call.argument) for call in part.filters)
        for part in parts
    )


class _LineCounter:
    """Line and column of ever later positions in a text, reading each character once."""

    def __init__(self, text: str):
        self.text = text
        self.position = 0
        self.line = 1
        self.line_start = 0

    def at(self, position: int) -> tuple[int, int]:
        newlines = self.text.count("\n", self.position, position)
        if newlines:
            self.line += newlines
            self.line_start = self.text.rfind("\n", self.position, position) + 1
        self.position = position
        return self.line, position - self.line_start + 1

    def describe(self, position: int) -> str:
        line, column = self.at(position)
        return f"line {line}, column {column}"


def _placeholder(inner: str, line: int, column: int) -> Placeholder:
    name, *filter_texts = inner.split("|")
    name = name.strip()
    if not FIELD_NAME.match(name):
        raise TemplateSyntaxError(
            f"[{_shortened(inner)}] at line {line}, column {column} does not start with a "
            "field name."
        )
    filters = []
    for filter_text in filter_texts:
        filter_name, separator, argument = filter_text.partition(":")
        filters.append(FilterCall(filter_name.strip(), argument if separator else None))
    return Placeholder(name, tuple(filters), line, column)


def _shortened(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Caches ---------------------------------------------------------------------

_caches: dict[str, cachetools.LRUCache] = {}
_caches_lock = threading.Lock()


class _BoundedCache(cachetools.LRUCache):
    """Least recently used entries go first, past a number of entries or of estimated bytes."""

    def __init__(self, *, max_entries: int, max_bytes: int, getsizeof: Callable):
        super().__init__(maxsize=max_bytes, getsizeof=getsizeof)
        self.max_entries = max_entries

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        while len(self) > self.max_entries:
            self.popitem()


def _new_caches() -> dict[str, cachetools.LRUCache]:
    limits = {
        "max_entries": settings.TEMPLATE_CACHE_MAX_ENTRIES,
        "max_bytes": settings.TEMPLATE_CACHE_MAX_BYTES,
    }
    return {
        "compiled": _BoundedCache(**limits, getsizeof=lambda compiled: compiled.footprint),
        "prepared": _BoundedCache(**limits, getsizeof=lambda entry: entry[1]),
    }


def clear_caches() -> None:
    """Empty the template caches, sized again from the current settings."""
    with _caches_lock:
        _caches.update(_new_caches())


def template_cache_info() -> dict[str, dict[str, int]]:
    """Entries and estimated bytes of each template cache of this process."""
    with _caches_lock:
        return {name: {"entries": len(c), "bytes": c.currsize} for name, c in _caches.items()}


class _HashedKey(list):
    """A cache key whose hash is computed once: the LRU cache hashes a key several times,
    and hashing the fields' FieldFormats is Python code (as functools' own _HashedSeq)."""

    __slots__ = ("hash_value",)

    def __init__(self, *items):
        super().__init__(items)
        self.hash_value = hash(items)

    def __hash__(self):
        return self.hash_value


def _cached(name: str, key, make: Callable):
    """The cache's value for `key`, or make() stored in it (unless larger than the whole cache)."""
    with _caches_lock:
        if not _caches:
            _caches.update(_new_caches())
        cache = _caches[name]
        try:
            return cache[key]
        except KeyError:
            pass
    value = make()
    # A value larger than the whole cache (ValueError) is used this once, never kept.
    with _caches_lock, contextlib.suppress(ValueError):
        cache[key] = value
    return value


# Filters ------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """A formatter; `field_types` None means any field; type filters come first."""

    apply: Callable[[str, str | None, "FieldFormat"], str]
    field_types: frozenset[str] | None = None
    field_kind: str = ""  # "a number field": for messages
    argument_example: str = ""  # set when the filter needs an argument


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


# The validator's bound on integer and decimal fields (clients/parameter_validation.py):
# no real bill has more, and a value such as 1e999999999 written out in full
# would be a string of a billion digits.
AMOUNT_MAX_DIGITS = 18


def _amount(value: str) -> Decimal:
    """The value as a finite Decimal within AMOUNT_MAX_DIGITS; ValueError saying what is wrong."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(f"{_shown(value)} is not a number")
    if number.adjusted() >= AMOUNT_MAX_DIGITS:
        raise ValueError(
            f"{_shown(value)} has more than {AMOUNT_MAX_DIGITS} digits before the decimal point"
        )
    if number.as_tuple().exponent < -AMOUNT_MAX_DIGITS:
        raise ValueError(
            f"{_shown(value)} has more than {AMOUNT_MAX_DIGITS} digits after the decimal point"
        )
    return number


def _shown(value: str) -> str:
    """A value as quoted in a message: repr, shortened (it may be any length)."""
    return repr(_shortened(value))


def _rupiah(value: str, argument: str | None, field: FieldFormat) -> str:
    """1230000 -> 1.230.000: whole rupiah, Indonesian grouping. "" stays ""."""
    return _indonesian_number(_amount(value), 0) if value else ""


def _number(value: str, argument: str | None, field: FieldFormat) -> str:
    """1230000.5 -> 1.230.000,5: Indonesian grouping, decimals kept. "" stays ""."""
    return _indonesian_number(_amount(value), None) if value else ""


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
    if not value:
        return ""
    try:
        moment = parse_date(value, field.date_format)
    except ValueError:
        raise ValueError(f"{_shown(value)} is not a date written as {field.date_format}") from None
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
    missing value renders as "" (or its default filter's text). A value its
    filter cannot format (rupiah of "NaN", a date in another pattern) raises
    RenderError naming the placeholder and the value. With escape_html (email
    HTML bodies), every inserted value is HTML-escaped and the filled HTML is
    sanitised again (templates_app/sanitizing.py), so that no value becomes a
    javascript: or data: link. Raises TemplateSyntaxError (TemplateTooLarge) for
    text that is not a template.
    """
    fields_key = tuple(sorted(fields.items()))
    key = _HashedKey(text, fields_key, escape_html)
    renderer, _ = _cached("prepared", key, lambda: _prepare(text, fields_key, escape_html))
    return renderer


def render(
    text: str, values: Mapping[str, str], fields: Mapping[str, FieldFormat], **options
) -> str:
    return prepare(text, fields, **options)(values)


def _prepare(text: str, fields_key: tuple, escape_html: bool) -> tuple[Renderer, int]:
    """The renderer of `text` and its estimated size in bytes."""
    fields = dict(fields_key)
    compiled = compile_template(text)
    steps = tuple(
        part if isinstance(part, str) else _placeholder_step(part, fields, escape_html)
        for part in compiled.parts
    )

    def fill(values: Mapping[str, str]) -> str:
        return "".join([step if step.__class__ is str else step(values) for step in steps])

    steps_bytes = sum(
        STEP_BYTES + STEP_FILTER_BYTES * len(placeholder.filters)
        for placeholder in compiled.placeholders
    )
    return (_sanitised(fill) if escape_html else fill), compiled.footprint + steps_bytes


def _sanitised(fill: Renderer) -> Renderer:
    """The renderer whose HTML is sanitised once filled: an escaped value cannot open a
    tag or leave its attribute, but it can be a whole javascript: URL."""

    def fill_sanitised(values: Mapping[str, str]) -> str:
        return sanitize_html(fill(values))

    return fill_sanitised


def _placeholder_step(
    placeholder: Placeholder, fields: Mapping[str, FieldFormat], escape_html: bool
) -> Callable[[Mapping[str, str]], str]:
    name = placeholder.field
    field = fields.get(name, FieldFormat("text"))
    calls = [
        (FILTERS[call.name].apply, call.argument)
        for call in placeholder.filters
        if call.name in FILTERS
    ]

    def step(values):
        value = values.get(name) or ""
        try:
            for apply, argument in calls:
                value = apply(value, argument, field)
        except ValueError as exc:
            raise RenderError(f"{placeholder.where}: {exc}.") from exc
        except ArithmeticError as exc:  # decimal's signals: not expected past _amount's checks
            raise RenderError(
                f"{placeholder.where}: {_shown(values.get(name) or '')} cannot be formatted "
                f"({type(exc).__name__})."
            ) from exc
        return html.escape(value) if escape_html else value

    return step


def placeholder_values(
    text: str, values: Mapping[str, str], fields: Mapping[str, FieldFormat]
) -> list[str]:
    """Each placeholder of the template filled in, in order (for providers' template APIs).

    WhatsApp template messages take the values of the approved template's
    {{1}}, {{2}}, … rather than a finished text. Raises RenderError as prepare's
    renderer does.
    """
    return [
        _placeholder_step(placeholder, fields, False)(values)
        for placeholder in compile_template(text).placeholders
    ]
