"""Every answer of /notif, errors included, is a JSON or XML body with a code.

`api_exception_handler` turns whatever went wrong (our own refusals, DRF's
exceptions, and unexpected faults) into that body, so no request is ever
answered with Django's HTML error page.
"""

import logging

from rest_framework import exceptions, status
from rest_framework.response import Response

from notifications.api.responses import response_body

logger = logging.getLogger(__name__)


AUTHENTICATE_HEADER = 'HMAC-SHA256 realm="notif"'


class ApiError(exceptions.APIException):
    """A refusal with the API's own error code."""

    def __init__(self, *, code: str, message: str, http_status: int, errors=None):
        super().__init__(detail=message, code=code)
        self.code = code
        self.message = message
        self.status_code = http_status
        self.errors = errors or {}


# Our error codes for the exceptions DRF raises itself.
_DRF_CODES = {
    exceptions.NotAuthenticated: ("INVALID_SIGNATURE", status.HTTP_401_UNAUTHORIZED),
    exceptions.AuthenticationFailed: ("INVALID_SIGNATURE", status.HTTP_401_UNAUTHORIZED),
    exceptions.Throttled: ("RATE_LIMITED", status.HTTP_429_TOO_MANY_REQUESTS),
    exceptions.MethodNotAllowed: ("METHOD_NOT_ALLOWED", status.HTTP_405_METHOD_NOT_ALLOWED),
    exceptions.UnsupportedMediaType: (
        "UNSUPPORTED_MEDIA_TYPE",
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    ),
    exceptions.ParseError: ("VALIDATION_ERROR", status.HTTP_400_BAD_REQUEST),
}


def api_exception_handler(exc, context):
    request = context["request"]
    reference = getattr(request, "kokatto_reference", "")
    if isinstance(exc, ApiError):
        body = response_body(
            reference=reference, code=exc.code, message=exc.message, errors=exc.errors
        )
        response = Response(body, status=exc.status_code)
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            response["WWW-Authenticate"] = AUTHENTICATE_HEADER
        return response
    for exc_class, (code, http_status) in _DRF_CODES.items():
        if isinstance(exc, exc_class):
            response = Response(
                response_body(reference=reference, code=code, message=str(exc.detail)),
                status=http_status,
            )
            if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
                response["Retry-After"] = str(max(1, round(exc.wait)))
            return response
    request_id = getattr(request, "kokatto_request_id", "")
    logger.exception("Unexpected error answering /notif (request id %s)", request_id)
    body = response_body(
        reference=reference,
        code="SERVICE_UNAVAILABLE",
        message=f"The platform could not answer this time; retry later (request id {request_id}).",
    )
    response = Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response["Retry-After"] = "5"
    return response
