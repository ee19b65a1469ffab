"""The OpenAPI description of /notif (served at /api/schema/, browsable at /api/docs/)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers


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
            "the client's secret key. See the README for test vectors.",
        }


class DeliverySerializer(serializers.Serializer):
    media = serializers.CharField(help_text="sms, email or whatsapp")
    status = serializers.CharField(
        help_text="PENDING, SENDING, SENT, DELIVERED, UNDELIVERED, FAILED, CANCELLED, EXPIRED"
    )
    updatedAt = serializers.DateTimeField()


class NotifResponseSerializer(serializers.Serializer):
    requestId = serializers.CharField(help_text="The clientNotifRefId, echoed back.")
    status = serializers.CharField(
        help_text="ACCEPTED, PROCESSING, SENT, DELIVERED, FAILED, CANCELLED, or REJECTED."
    )
    code = serializers.CharField(
        help_text="OK, VALIDATION_ERROR, UNSUPPORTED_OPERATION, UNKNOWN_APP_TYPE, "
        "INVALID_SIGNATURE, EXPIRED_TIMESTAMP, CLIENT_INACTIVE, NOT_FOUND, "
        "DUPLICATE_REFERENCE, NOT_CANCELLABLE, RATE_LIMITED, METHOD_NOT_ALLOWED, "
        "UNSUPPORTED_MEDIA_TYPE, SERVICE_UNAVAILABLE"
    )
    message = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="On VALIDATION_ERROR: the messages of each bad parameter.",
    )
    deliveries = DeliverySerializer(many=True, required=False)


def _parameter(name, description, required=False, enum=None):
    return OpenApiParameter(
        name, OpenApiTypes.STR, OpenApiParameter.QUERY, required, description, enum=enum
    )


PARAMETERS = [
    _parameter("clientId", "The pre-agreed client id, e.g. 8002.", required=True),
    _parameter("operation", "What to do.", required=True, enum=["create", "status", "cancel"]),
    _parameter("clientNotifRefId", "Your unique reference, 1-100 characters.", required=True),
    _parameter("timestamp", "Unix time in seconds; within 300 s of ours.", required=True),
    _parameter(
        "signature",
        "Hex HMAC-SHA256 of the canonical string of every other parameter, keyed with "
        "your secret key (see the README).",
        required=True,
    ),
    _parameter("appType", "The application, e.g. ABC. Required for create."),
    _parameter("format", "Response format; else the Accept header decides.", enum=["json", "xml"]),
    _parameter("customerName", "Demo application field (each application has its own)."),
    _parameter("balance", "Demo application field: whole number, e.g. 1230000."),
    _parameter("dueDate", "Demo application field: dd-MM-yyyy."),
    _parameter("msisdn", "Demo application field: SMS recipient."),
    _parameter("email", "Demo application field: email recipient."),
]


def _response(description, code, status="REJECTED"):
    return OpenApiResponse(
        NotifResponseSerializer,
        description=description,
        examples=[
            OpenApiExample(
                code,
                value={"requestId": "UNIQ-REFERENCE-ID", "status": status, "code": code},
            )
        ],
    )


notif_schema = extend_schema(
    summary="Create a notification, or read or cancel one",
    parameters=PARAMETERS,
    request={
        "application/x-www-form-urlencoded": OpenApiTypes.OBJECT,
        "application/json": OpenApiTypes.OBJECT,
    },
    responses={
        (200, "application/json"): _response(
            "status/cancel, or a retry of create", "OK", "ACCEPTED"
        ),
        (201, "application/json"): _response("created", "OK", "ACCEPTED"),
        (200, "application/xml"): OpenApiResponse(
            OpenApiTypes.STR, description="The same fields under <response>."
        ),
        (400, "application/json"): _response(
            "VALIDATION_ERROR, UNSUPPORTED_OPERATION or UNKNOWN_APP_TYPE", "VALIDATION_ERROR"
        ),
        (401, "application/json"): _response(
            "INVALID_SIGNATURE (also for an unknown client) or EXPIRED_TIMESTAMP",
            "INVALID_SIGNATURE",
        ),
        (403, "application/json"): _response("CLIENT_INACTIVE", "CLIENT_INACTIVE"),
        (404, "application/json"): _response("NOT_FOUND", "NOT_FOUND"),
        (409, "application/json"): _response(
            "DUPLICATE_REFERENCE or NOT_CANCELLABLE", "DUPLICATE_REFERENCE"
        ),
        (429, "application/json"): _response("RATE_LIMITED, with Retry-After", "RATE_LIMITED"),
        (503, "application/json"): _response(
            "SERVICE_UNAVAILABLE: an unexpected fault, logged with the X-Request-ID",
            "SERVICE_UNAVAILABLE",
        ),
    },
)
