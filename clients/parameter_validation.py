"""The one validator for notification parameters, shared by the API and batches.

`validate_parameters` checks a notification's values against its application's
field schema and returns every problem at once, keyed by field name, so a
client fixes a request or a batch line in one go.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache, partial
from typing import Protocol
from zoneinfo import ZoneInfo

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email


class PlatformParameter(StrEnum):
    """The platform's own parameters, of an API request or a batch line: the one list of
    them. An application's fields cannot reuse them."""

    CLIENT_ID = "clientId"
    APP_TYPE = "appType"
    REFERENCE = "clientNotifRefId"
    SEND_AT = "sendAt"
    EXPIRES_AT = "expiresAt"
    # Only in an API request, which they name, date, sign and shape.
    OPERATION = "operation"
    TIMESTAMP = "timestamp"
    SIGNATURE = "signature"
    FORMAT = "format"


_REQUEST_ONLY = {
    PlatformParameter.OPERATION,
    PlatformParameter.TIMESTAMP,
    PlatformParameter.SIGNATURE,
    PlatformParameter.FORMAT,
}
# Plain strings: looked up for every token of every batch line.
RESERVED_PARAMETERS = frozenset(parameter.value for parameter in PlatformParameter)
# A batch line carries no request-only parameter: one found there is not taken out of its
# fields, so the validator refuses it as an unknown field.
LINE_PARAMETERS = frozenset(p.value for p in PlatformParameter if p not in _REQUEST_ONLY)
REFERENCE_MAX_LENGTH = 100


def application_values(parameters: Mapping[str, str]) -> dict[str, str]:
    """The application's fields among an API request's parameters: every name but the
    platform's. (A batch line's: every token not in LINE_PARAMETERS.)"""
    return {name: value for name, value in parameters.items() if name not in RESERVED_PARAMETERS}


_DATE_TOKENS = {
    "yyyy": "%Y",
    "yy": "%y",
    "MM": "%m",
    "dd": "%d",
    "HH": "%H",
    "mm": "%M",
    "ss": "%S",
}
_DATE_LITERALS = "-/.: T,"
_DATE_PATTERN = re.compile("|".join(sorted(_DATE_TOKENS, key=len, reverse=True)) + "|.")
# Numbers as the renderer formats them: ASCII digits, an optional sign and point, no
# exponent, no NaN or Infinity; at most 18 digits before the point (they fit a bigint and
# are exact in a Decimal of the default context) and 6 after. A number that does not
# match is looked at again (_NUMBER_PARTS) to say which rule it breaks.
NUMBER_MAX_DIGITS = 18
DECIMAL_MAX_PLACES = 6
_INTEGER = re.compile(rf"[+-]?[0-9]{{1,{NUMBER_MAX_DIGITS}}}", re.ASCII)
_DECIMAL = re.compile(
    rf"[+-]?[0-9]{{1,{NUMBER_MAX_DIGITS}}}(?:\.[0-9]{{1,{DECIMAL_MAX_PLACES}}})?", re.ASCII
)
_NUMBER_PARTS = re.compile(r"[+-]?([0-9]+)(?:\.([0-9]+))?", re.ASCII)


class FieldSpec(Protocol):
    """What the validator needs of a field: clients.models.Field has it."""

    name: str
    type: str
    required: bool
    max_length: int | None
    date_format: str


@dataclass(frozen=True)
class FieldFormat:
    """What rendering needs to know of a field: its type and date pattern."""

    type: str
    date_format: str = ""


@dataclass
class ValidationResult:
    values: dict[str, object] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def is_valid(self) -> bool:
        return not self.errors

    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


@lru_cache(maxsize=64)
def java_date_format_to_strftime(pattern: str) -> str:
    """Translate a pre-agreed date pattern such as dd-MM-yyyy to strftime's %d-%m-%Y.

    Raises ValueError naming the first letter that is not a known pattern part,
    or a part given twice.
    """
    return "".join(_DATE_TOKENS.get(token, token) for token in _date_pattern_parts(pattern))


def parse_date(text: str, pattern: str) -> datetime:
    """Read `text` written exactly as the date pattern says (dd-MM-yyyy: 09-09-2015, not 9-9-2015).

    A regular expression of the pattern's digits, then datetime's own range
    checks: a batch has a date a line, and strptime (plus strftime to insist on
    the exact form) costs several times as much. Raises ValueError.
    """
    regex, build = _date_reader(pattern)
    match = regex.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not written as {pattern}")
    return build(match.groups())


# Each part of a datetime, in datetime()'s order, and its value when the pattern has none.
_PARTS = (("yyyy", 1900), ("MM", 1), ("dd", 1), ("HH", 0), ("mm", 0), ("ss", 0))


@lru_cache(maxsize=64)
def _date_reader(pattern: str):
    """The pattern as a regular expression with a group of digits a part, and a function
    making the datetime of a match's groups."""
    regex, parts = [], []
    for part in _date_pattern_parts(pattern):
        if part in _DATE_TOKENS:
            # yyyy from 1000: strftime writes year 999 as "999", which the old exact
            # reading (strptime, then strftime) refused.
            regex.append(r"([1-9]\d{3})" if part == "yyyy" else r"(\d{2})")
            parts.append(part)
        else:
            regex.append(re.escape(part))
    # Each datetime() argument: the index of its group, or None for the part's default.
    slots = [(parts.index(name) if name in parts else None, default) for name, default in _PARTS]
    two_digit_year = parts.index("yy") if "yy" in parts else None

    def build(groups: tuple[str, ...]) -> datetime:
        values = [default if index is None else int(groups[index]) for index, default in slots]
        if two_digit_year is not None:  # as strptime's %y: 69-99 are 1969-1999, 00-68 2000-2068
            year = int(groups[two_digit_year])
            values[0] = year + (1900 if year >= 69 else 2000)
        return datetime(*values)

    return re.compile("".join(regex), re.ASCII), build


def _date_pattern_parts(pattern: str) -> list[str]:
    """The pattern's parts (dd, MM, …) and literals, in order; ValueError for anything else."""
    tokens, seen = [], set()
    for match in _DATE_PATTERN.finditer(pattern):
        token = match.group()
        if token in _DATE_TOKENS:
            if token in seen:
                raise ValueError(f"{token!r} appears twice in the date pattern.")
            seen.add(token)
        elif token not in _DATE_LITERALS:
            raise ValueError(
                f"{token!r} is not part of a date pattern; use dd, MM, yyyy, yy, HH, mm, ss."
            )
        tokens.append(token)
    return tokens


# Unicode's category Cc is exactly these 65 code points: C0, DEL and C1. Unpaired
# surrogates too (a JSON body can carry them): no database column can store them as UTF-8.
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_NO_CONTROL_CHARACTERS = "Control characters and unpaired surrogates are not allowed."


def has_control_characters(value: str) -> bool:
    # Printable ASCII, most values, has none: a quicker look than the regular expression.
    if value.isascii() and value.isprintable():
        return False
    return _CONTROL_CHARACTER.search(value) is not None


def reference_errors(reference: str | None) -> list[str]:
    """The problems with a clientNotifRefId: 1 to 100 characters, no control characters."""
    if reference is None or reference == "":
        return ["This field is required."]
    errors = []
    if len(reference) > REFERENCE_MAX_LENGTH:
        errors.append(f"At most {REFERENCE_MAX_LENGTH} characters (got {len(reference)}).")
    if has_control_characters(reference):
        errors.append(_NO_CONTROL_CHARACTERS)
    return errors


# A sendAt/expiresAt from 1970 to 9998: every such moment has a UTC form both databases
# store. Year 1 in a zone ahead of UTC passed, then failed to store.
_MOMENT_YEARS = (1970, 9998)


def _out_of_years(moment: datetime) -> bool:
    """Whether a sendAt/expiresAt falls outside the years every database can store."""
    earliest, latest = _MOMENT_YEARS
    return not earliest <= moment.year <= latest


def parse_moment(text: str, time_zone: str) -> datetime:
    """A sendAt/expiresAt value: Unix seconds, or ISO 8601 (without an offset: in `time_zone`).

    Returns an aware datetime; raises ValueError with a message.
    """
    if re.fullmatch(r"\d{1,12}", text):
        try:
            moment = datetime.fromtimestamp(int(text), tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise ValueError(_out_of_range(text)) from None
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                "Expected Unix seconds or ISO 8601 such as 2026-11-25T09:00:00+07:00; "
                f"got {text!r}."
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(time_zone))
    if _out_of_years(moment):
        raise ValueError(_out_of_range(text))
    return moment


def _out_of_range(text: str) -> str:
    earliest, latest = _MOMENT_YEARS
    return f"Out of range: give a moment from {earliest} to {latest}; got {text!r}."


def schedule_errors(
    send_at: datetime | None, expires_at: datetime | None, now: datetime
) -> dict[str, list[str]]:
    """The problems of a notification's sendAt/expiresAt pair (expiresAt given, or taken
    from the application's expiry date field)."""
    errors = {}
    if expires_at is not None and _out_of_years(expires_at):
        earliest, latest = _MOMENT_YEARS
        errors["expiresAt"] = [f"Out of range: the expiry must fall from {earliest} to {latest}."]
    elif expires_at is not None and expires_at <= now:
        errors["expiresAt"] = ["Already passed: the notification would never be sent."]
    elif expires_at is not None and send_at is not None and expires_at <= send_at:
        errors["expiresAt"] = ["Must be after sendAt."]
    return errors


def validate_parameters(
    *, fields: Iterable[FieldSpec], values: Mapping[str, str], application_code: str
) -> ValidationResult:
    """Check `values` (field name -> submitted text) against an application's fields.

    Returns a ValidationResult with the parsed value of every valid field and,
    for each bad one, its list of messages. Keys that are not fields of the
    application are errors too: a misspelt optional field must not vanish.
    """
    return ParameterValidator(fields, application_code).validate(values)


class ParameterValidator:
    """An application's fields, read once to check the values of many notifications.

    validate_parameters in a form a batch keeps for its million lines: each
    field's parser and limits are looked up here once, not once a line.
    """

    def __init__(self, fields: Iterable[FieldSpec], application_code: str):
        self.application_code = application_code
        # No value longer than any parameter may be (API_MAX_PARAMETER_CHARS), whatever its
        # field says: a batch line then carries nothing the API would refuse.
        cap = settings.API_MAX_PARAMETER_CHARS
        self._rules = [
            (
                spec.name,
                spec.required,
                min(spec.max_length or cap, cap),
                partial(_parser_of(spec.type), spec),
            )
            for spec in fields
        ]
        self._names = frozenset(name for name, *_ in self._rules)

    def validate(self, values: Mapping[str, str]) -> ValidationResult:
        """validate_parameters' result for `values`."""
        result = ValidationResult()
        for name in values:
            if name not in self._names:
                result.add_error(
                    name, f"Unknown field: application {self.application_code} has no {name!r}."
                )
        parsed = result.values
        for name, required, max_length, parse in self._rules:
            raw = values.get(name)
            if not raw:  # missing or ""
                if required:
                    result.add_error(name, "This field is required.")
                continue
            if len(raw) > max_length:
                result.add_error(name, f"At most {max_length} characters (got {len(raw)}).")
                continue
            try:
                if has_control_characters(raw):
                    raise ValueError(_NO_CONTROL_CHARACTERS)
                parsed[name] = parse(raw)
            except ValueError as exc:
                result.add_error(name, str(exc))
        return result


def _parser_of(field_type: str):
    """The parser of a field type; one that refuses every value for a type unknown here."""
    return _PARSERS.get(field_type, _parse_unknown_type)


def _parse_unknown_type(spec: FieldSpec, raw: str):
    raise ValueError(f"Field type {spec.type!r} is not known; an operator must fix the field.")


def _parse_text(spec: FieldSpec, raw: str) -> str:
    return raw


def _parse_integer(spec: FieldSpec, raw: str) -> int:
    if _INTEGER.fullmatch(raw):
        return int(raw)
    raise ValueError(
        _digits_problem(raw, decimal=False)
        or f"Expected a whole number, e.g. 1230000; got {raw!r}."
    )


def _parse_decimal(spec: FieldSpec, raw: str) -> Decimal:
    if _DECIMAL.fullmatch(raw):
        return Decimal(raw)
    raise ValueError(
        _digits_problem(raw, decimal=True)
        or "Expected a number such as 1230000.50 (digits, an optional point; no exponent); "
        f"got {raw!r}."
    )


def _digits_problem(raw: str, *, decimal: bool) -> str:
    """Which digit limit a number written in digits passes, or "" (not such a number)."""
    match = _NUMBER_PARTS.fullmatch(raw)
    if match is None or (match.group(2) is not None and not decimal):
        return ""
    whole, places = match.group(1), match.group(2) or ""
    if len(whole) > NUMBER_MAX_DIGITS:
        return f"At most {NUMBER_MAX_DIGITS} digits before the decimal point (got {len(whole)})."
    if len(places) > DECIMAL_MAX_PLACES:
        return f"At most {DECIMAL_MAX_PLACES} decimals (got {len(places)})."
    return ""


def _parse_date(spec: FieldSpec, raw: str) -> datetime:
    try:
        return parse_date(raw, spec.date_format)
    except ValueError:
        raise ValueError(f"Expected a date as {spec.date_format}; got {raw!r}.") from None


def _parse_phone(spec: FieldSpec, raw: str) -> str:
    if e164 := phone_number_e164(raw):
        return e164
    raise ValueError(f"Expected a phone number such as +6281234567890; got {raw!r}.")


def phone_number_e164(raw: str) -> str:
    """A phone number as people write it (0812…, 62812…, +62 812-3456-7890) in E.164, the
    form deliveries store; "" when it is not a valid number. Support's search uses it too."""
    if e164 := _local_mobile_e164(raw):
        return e164
    try:
        number = phonenumbers.parse(raw, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_valid_number(number):
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class _MobileShape:
    country_code: int
    written: re.Pattern  # "0" or "+<code>", then the national number
    mobile: re.Pattern
    general: re.Pattern
    lengths: frozenset


@lru_cache(maxsize=4)
def _mobile_shape(region: str) -> _MobileShape | None:
    """The region's mobile numbers, from phonenumbers' own metadata (None: no fast path)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.national_prefix_for_parsing != "0":
        return None
    if metadata.national_prefix_transform_rule or metadata.mobile is None:
        return None
    return _MobileShape(
        country_code=metadata.country_code,
        written=re.compile(rf"(?:0|\+{metadata.country_code})([0-9]+)", re.ASCII),
        mobile=re.compile(metadata.mobile.national_number_pattern, re.ASCII),
        general=re.compile(metadata.general_desc.national_number_pattern, re.ASCII),
        lengths=frozenset(metadata.mobile.possible_length),
    )


def _local_mobile_e164(raw: str) -> str:
    """E.164 of a mobile number of the default region written plainly (0812…, +62812…), or "".

    Batch files carry a phone number a line, and phonenumbers' full parse and
    validity check cost about 25 µs each. This takes the common shape at once
    and leaves every other input to phonenumbers; tests check that both agree.
    """
    shape = _mobile_shape(settings.PHONE_DEFAULT_REGION)
    match = shape.written.fullmatch(raw) if shape else None
    if match is None:
        return ""
    national = match.group(1)
    if (
        len(national) in shape.lengths
        and shape.mobile.fullmatch(national)
        and shape.general.fullmatch(national)
    ):
        return f"+{shape.country_code}{national}"
    return ""


def _parse_email(spec: FieldSpec, raw: str) -> str:
    try:
        validate_email(raw)
    except ValidationError:
        raise ValueError(f"Expected an email address; got {raw!r}.") from None
    return raw


_PARSERS = {
    "text": _parse_text,
    "integer": _parse_integer,
    "decimal": _parse_decimal,
    "date": _parse_date,
    "phone": _parse_phone,
    "email": _parse_email,
}
