"""Reading a /notif request's parameters: query string, form body or JSON object.

Everything here runs before the signature is checked, so it is bounded by
settings alone: the body's size (API_MAX_BODY_BYTES), the number of parameters
(Django's DATA_UPLOAD_MAX_NUMBER_FIELDS) and each one's length
(API_MAX_PARAMETER_CHARS).
"""

import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from rest_framework.exceptions import ParseError

from clients.parameter_validation import reference_errors
from notifications.api.errors import ApiError
from notifications.api.parsers import JSONPairs

_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")  # clients.models.code_validator, column width 32
_UNIX_TIME = re.compile(r"\d{1,12}")
TIMESTAMP_MESSAGE = "Required: Unix time in seconds, e.g. 1764000000."
CODE_MESSAGE = "Letters, digits, '-' and '_' only; 1 to 32 characters."


def read_parameters(request) -> dict[str, str]:
    """Every parameter of the request as text, read once and kept on the request.

    GET takes the query string; POST takes the body (form-encoded or a JSON
    object of scalars) plus any query-string parameters. Raises ApiError:
    PAYLOAD_TOO_LARGE (413) for a body or query string past API_MAX_BODY_BYTES,
    read no further; VALIDATION_ERROR for too many parameters, a parameter
    given twice or longer than API_MAX_PARAMETER_CHARS, a malformed body, or a
    JSON value that is not a string or a whole number. A refusal is kept too:
    asked again, the same request gets the same answer.
    """
    if hasattr(request, "kokatto_parameters"):
        return request.kokatto_parameters
    if hasattr(request, "kokatto_refusal"):
        raise request.kokatto_refusal
    try:
        request.kokatto_parameters = _parameters(request)
    except ApiError as refusal:
        request.kokatto_refusal = refusal
        raise
    return request.kokatto_parameters


def platform_parameter_errors(parameters: dict[str, str]) -> dict[str, list[str]]:
    """The problems of the platform's own parameters that can be told before the signature:
    timestamp (required), and clientId, appType and clientNotifRefId when given.

    These values are looked up in the database as they are; PostgreSQL refuses a
    NUL in text, so a value of the wrong form must never get that far.
    """
    errors = {}
    if not _UNIX_TIME.fullmatch(parameters.get("timestamp", "")):
        errors["timestamp"] = [TIMESTAMP_MESSAGE]
    for name in ("clientId", "appType"):
        if parameters.get(name) and not _CODE.fullmatch(parameters[name]):
            errors[name] = [CODE_MESSAGE]
    if parameters.get("clientNotifRefId") and (
        problems := reference_errors(parameters["clientNotifRefId"])
    ):
        errors["clientNotifRefId"] = problems
    return errors


def validation_error(errors: dict[str, list[str]], message: str = "") -> ApiError:
    return ApiError(
        code="VALIDATION_ERROR",
        message=message or "Some parameters are missing or invalid.",
        http_status=400,
        errors=errors,
    )


def _parameters(request) -> dict[str, str]:
    _refuse_oversized(request)
    try:
        pairs = list(_query_pairs(request))
        if request.method == "POST":
            pairs += list(_body_pairs(request))
    except TooManyFieldsSent:
        pairs = None
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    if pairs is None or (limit is not None and len(pairs) > limit):
        raise validation_error({}, f"At most {limit} parameters are accepted.")
    parameters, errors = {}, {}
    for name, value in pairs:
        if name in parameters:
            errors[name] = ["Given more than once."]
        parameters[name] = value
    request.kokatto_reference = parameters.get("clientNotifRefId", "")
    if errors:
        raise validation_error(errors, "A parameter is given more than once.")
    if errors := _length_errors(parameters):
        raise validation_error(errors)
    return parameters


def _refuse_oversized(request) -> None:
    limit = settings.API_MAX_BODY_BYTES
    try:
        body_bytes = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        body_bytes = 0  # as Django reads it: no body
    if body_bytes > limit or len(request.META.get("QUERY_STRING", "")) > limit:
        raise _too_large(limit)


def _too_large(limit: int) -> ApiError:
    return ApiError(
        code="PAYLOAD_TOO_LARGE",
        message=f"The request's parameters exceed {limit} bytes.",
        http_status=413,
    )


def _length_errors(parameters: dict[str, str]) -> dict[str, list[str]]:
    limit = settings.API_MAX_PARAMETER_CHARS
    errors = {}
    for name, value in parameters.items():
        if len(name) > limit:
            # The name is the error's key: a shortened one says enough.
            errors[f"{name[:40]}…"] = [f"A parameter name is at most {limit} characters."]
        elif len(value) > limit:
            errors[name] = [f"At most {limit} characters (got {len(value)})."]
    return errors


def _query_pairs(request):
    for name, values in request.query_params.lists():
        for value in values:
            yield name, value


def _body_pairs(request):
    try:
        data = request.data
    except ParseError as exc:
        raise validation_error({}, f"Malformed body: {exc.detail}") from None
    except RequestDataTooBig:  # DATA_UPLOAD_MAX_MEMORY_SIZE set below API_MAX_BODY_BYTES
        raise _too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) from None
    if not data:  # DRF's {} for an empty body
        return
    if hasattr(data, "lists"):
        for name, values in data.lists():
            for value in values:
                yield name, value
        return
    if not isinstance(data, JSONPairs):
        raise validation_error({}, "A JSON body must be an object.")
    for name, value in data:
        # bool is an int in Python; true/false are not pre-agreed values.
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise validation_error(
                {name: ["Must be a string or a whole number."]},
                "JSON values must be strings or whole numbers.",
            )
        yield name, str(value)
