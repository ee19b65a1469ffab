"""The OpenAPI description of /notif (served at /api/schema/, browsable at /api/docs/).

It gives each platform parameter the format the server checks, so that a client
generated from it sends what the server accepts, and every answer in both of
its media types: JSON, and XML as notifications/api/renderers.py writes it.
"""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
)
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from clients.media import MEDIA
from clients.parameter_validation import REFERENCE_MAX_LENGTH
from notifications.models import DeliveryStatus, NotificationStatus

ERROR_CODES = [
    "VALIDATION_ERROR",
    "UNSUPPORTED_OPERATION",
    "UNKNOWN_APP_TYPE",
    "INVALID_SIGNATURE",
    "EXPIRED_TIMESTAMP",
    "CLIENT_INACTIVE",
    "NOT_FOUND",
    "DUPLICATE_REFERENCE",
    "NOT_CANCELLABLE",
    "RATE_LIMITED",
    "METHOD_NOT_ALLOWED",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "SERVICE_UNAVAILABLE",
    "KEY_UNREADABLE",
]
ANSWER_STATUSES = [*NotificationStatus.values, "REJECTED"]


class SignatureScheme(OpenApiAuthenticationExtension):
    target_class = "notifications.api.authentication.SignatureAuthentication"
    name = "signature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "query",
            "name": "signature",
            "description": "Lower-case hex HMAC-SHA256 of the canonical parameter string "
            "(RFC 3986 percent-encoding, pairs sorted by name, joined with &), keyed with "
            "the client's secret key. See the README for test vectors. In a POST, the "
            "signature is a parameter of the body like the others.",
        }


class DeliverySerializer(serializers.Serializer):
    media = serializers.ChoiceField(choices=sorted(MEDIA))
    status = serializers.ChoiceField(choices=DeliveryStatus.values)
    updatedAt = serializers.DateTimeField()


class NotifResponseSerializer(serializers.Serializer):
    requestId = serializers.CharField(
        allow_blank=True, help_text="The clientNotifRefId, echoed back (empty if none was read)."
    )
    status = serializers.ChoiceField(
        choices=ANSWER_STATUSES, help_text="REJECTED when the request itself was refused."
    )
    code = serializers.ChoiceField(choices=["OK", *ERROR_CODES])
    message = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="On VALIDATION_ERROR: the messages of each bad parameter.",
    )
    deliveries = DeliverySerializer(many=True, required=False)


def _xml_schema() -> dict:
    """The same answer as the renderer writes it in XML: <response> with a child a field."""
    text = {"type": "string"}
    return {
        "type": "object",
        "xml": {"name": "response"},
        "description": "Characters XML 1.0 cannot carry (most C0 controls, lone surrogates, "
        "U+FFFE, U+FFFF) are written as U+FFFD.",
        "required": ["requestId", "status", "code", "message"],
        "properties": {
            "requestId": text,
            "status": {"type": "string", "enum": ANSWER_STATUSES},
            "code": {"type": "string", "enum": ["OK", *ERROR_CODES]},
            "message": text,
            "errors": {
                "type": "array",
                "xml": {"wrapped": True},
                "description": '<errors><error field="balance">message</error>…</errors>',
                "items": {
                    "type": "object",
                    "xml": {"name": "error"},
                    "required": ["field", "message"],
                    "properties": {
                        "field": {"type": "string", "xml": {"attribute": True}},
                        "message": {"type": "string", "description": "The element's text."},
                    },
                },
            },
            "deliveries": {
                "type": "array",
                "xml": {"wrapped": True},
                "items": {
                    "type": "object",
                    "xml": {"name": "delivery"},
                    "required": ["media", "status", "updatedAt"],
                    "properties": {
                        "media": {"type": "string", "enum": sorted(MEDIA)},
                        "status": {"type": "string", "enum": DeliveryStatus.values},
                        "updatedAt": {"type": "string", "format": "date-time"},
                    },
                },
            },
        },
    }


class NotifXMLResponse(serializers.Serializer):
    """Stands for the XML answer in the schema (one component); XMLSchema describes it."""


class XMLSchema(OpenApiSerializerExtension):
    target_class = NotifXMLResponse

    def map_serializer(self, auto_schema, direction):
        return _xml_schema()


# (name, schema, description, required): the platform's own parameters, in the form the
# server checks them (notifications/api/parameters.py, clients/parameter_validation.py).
_CODE_PATTERN = "^[A-Za-z0-9_-]{1,32}$"
_MOMENT = {
    "type": "string",
    "pattern": "^([0-9]{1,12}|[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}"
    "([.][0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?)$",
}
PLATFORM_PARAMETERS = [
    ("clientId", {"type": "string", "pattern": _CODE_PATTERN}, "The pre-agreed client id.", True),
    (
        "operation",
        {"type": "string", "enum": ["create", "status", "cancel"]},
        "What to do.",
        True,
    ),
    (
        "clientNotifRefId",
        {
            "type": "string",
            "minLength": 1,
            "maxLength": REFERENCE_MAX_LENGTH,
            "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
        },
        f"Your unique reference: 1-{REFERENCE_MAX_LENGTH} characters, no control characters.",
        True,
    ),
    (
        "timestamp",
        {"type": "string", "pattern": "^[0-9]{1,12}$"},
        "Unix time in seconds; at most API_TIMESTAMP_TOLERANCE_SECONDS (300) from ours.",
        True,
    ),
    (
        "signature",
        {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        "Hex HMAC-SHA256 of the canonical string of every other parameter, keyed with "
        "your secret key (see the README).",
        True,
    ),
    (
        "appType",
        {"type": "string", "pattern": _CODE_PATTERN},
        "The application, e.g. ABC. Required for create.",
        False,
    ),
    (
        "format",
        {"type": "string", "enum": ["json", "xml"]},
        "Response format; else the Accept header decides (application/xml or text/xml).",
        False,
    ),
    ("sendAt", _MOMENT, "Not sent before: Unix seconds or ISO 8601, years 1970-9998.", False),
    (
        "expiresAt",
        _MOMENT,
        "Not sent after: Unix seconds or ISO 8601 (without an offset, in your time zone).",
        False,
    ),
]
# Each application has its own fields; these are the demo application's (ABC).
DEMO_FIELDS = [
    ("customerName", "Demo application field: text."),
    ("balance", "Demo application field: whole number, e.g. 1230000."),
    ("dueDate", "Demo application field: dd-MM-yyyy."),
    ("msisdn", "Demo application field: SMS recipient."),
    ("email", "Demo application field: email recipient."),
]


def _query_parameters() -> list[OpenApiParameter]:
    parameters = [
        OpenApiParameter(name, schema, OpenApiParameter.QUERY, required, description)
        for name, schema, description, required in PLATFORM_PARAMETERS
    ]
    parameters += [
        OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.QUERY, False, description)
        for name, description in DEMO_FIELDS
    ]
    return parameters


def _body_schema(*, whole_numbers: bool) -> dict:
    """A POST body: the same parameters as a GET's query string, the application's own
    fields besides (strings, or in JSON whole numbers too)."""
    field = {"type": "string"}
    if whole_numbers:
        field = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    properties = {name: schema for name, schema, _, _ in PLATFORM_PARAMETERS}
    properties.update({name: field for name, _ in DEMO_FIELDS})
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name, _, _, required in PLATFORM_PARAMETERS if required],
        "additionalProperties": field,
        "description": "Each parameter once: a name given twice (also in body and query "
        "string) is a VALIDATION_ERROR.",
    }


# HTTP status -> the code of its example, and what it means.
ANSWERS = {
    200: ("OK", "status/cancel, or a retry of create"),
    201: ("OK", "created"),
    400: ("VALIDATION_ERROR", "VALIDATION_ERROR, UNSUPPORTED_OPERATION or UNKNOWN_APP_TYPE"),
    401: ("INVALID_SIGNATURE", "INVALID_SIGNATURE (an unknown client too) or EXPIRED_TIMESTAMP"),
    403: ("CLIENT_INACTIVE", "CLIENT_INACTIVE"),
    404: ("NOT_FOUND", "NOT_FOUND"),
    409: ("DUPLICATE_REFERENCE", "DUPLICATE_REFERENCE or NOT_CANCELLABLE"),
    413: ("PAYLOAD_TOO_LARGE", "the body or query string is past API_MAX_BODY_BYTES"),
    429: ("RATE_LIMITED", "RATE_LIMITED, with Retry-After"),
    503: (
        "SERVICE_UNAVAILABLE",
        "an unexpected fault, logged with the X-Request-ID; KEY_UNREADABLE: the platform "
        "cannot read the client's secret key (an operator's fix)",
    ),
}
# Only a POST's body has a media type to refuse.
POST_ANSWERS = {
    **ANSWERS,
    415: ("UNSUPPORTED_MEDIA_TYPE", "a body neither form-encoded nor JSON (multipart too)"),
}


def _responses(answers: dict) -> dict:
    responses = {}
    for status, (code, description) in answers.items():
        example = OpenApiExample(
            code,
            value={
                "requestId": "UNIQ-REFERENCE-ID",
                "status": "ACCEPTED" if code == "OK" else "REJECTED",
                "code": code,
                "message": description,
            },
        )
        responses[(status, "application/json")] = OpenApiResponse(
            NotifResponseSerializer, description=description, examples=[example]
        )
        responses[(status, "application/xml")] = OpenApiResponse(
            NotifXMLResponse, description=description
        )
    return responses


RESPONSE_HEADERS = [
    OpenApiParameter(
        "X-Request-ID",
        {"type": "string", "pattern": "^[!-~]{1,64}$"},
        OpenApiParameter.HEADER,
        required=True,
        description="Yours, if you sent one of visible ASCII (at most 64); else ours.",
        response=True,
    ),
    OpenApiParameter(
        "Retry-After",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        description="Seconds to wait before trying again.",
        response=[429, 503],
    ),
    OpenApiParameter(
        "WWW-Authenticate",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description='HMAC-SHA256 realm="notif"',
        response=[401],
    ),
]
# A client may name its request in X-Request-ID; it is logged with any fault.
REQUEST_ID = OpenApiParameter(
    "X-Request-ID",
    {"type": "string", "pattern": "^[!-~]{1,64}$"},
    OpenApiParameter.HEADER,
    description="Your id of this request, echoed in the answer's X-Request-ID.",
)

notif_get_schema = extend_schema(
    summary="Create a notification, or read or cancel one (parameters in the query string)",
    parameters=[*_query_parameters(), REQUEST_ID, *RESPONSE_HEADERS],
    responses=_responses(ANSWERS),
)
notif_post_schema = extend_schema(
    summary="Create a notification, or read or cancel one (parameters in the body)",
    parameters=[REQUEST_ID, *RESPONSE_HEADERS],
    request={
        "application/x-www-form-urlencoded": _body_schema(whole_numbers=False),
        "application/json": _body_schema(whole_numbers=True),
    },
    responses=_responses(POST_ANSWERS),
)
