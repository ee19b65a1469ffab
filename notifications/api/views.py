"""The real-time API: one signed endpoint, /notif, whose `operation` selects what happens."""

import re
import uuid

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.views import APIView

from clients.parameter_validation import application_values
from notifications.api.authentication import ClientRateThrottle, SignatureAuthentication
from notifications.api.errors import ApiError, api_exception_handler
from notifications.api.parameters import read_parameters, validation_error
from notifications.api.parsers import StrictJSONParser
from notifications.api.renderers import FormatNegotiation, NotifJSONRenderer, XMLRenderer
from notifications.api.responses import notification_body
from notifications.api.schema import notif_get_schema, notif_post_schema
from notifications.intake import (
    IntakeError,
    notification_cancel,
    notification_create,
    notification_get,
)

_INTAKE_STATUS = {
    "UNKNOWN_APP_TYPE": 400,
    "VALIDATION_ERROR": 400,
    "CLIENT_INACTIVE": 403,
    "NOT_FOUND": 404,
    "DUPLICATE_REFERENCE": 409,
    "NOT_CANCELLABLE": 409,
}
# A client's X-Request-ID is echoed in a header: visible ASCII only, so it can never
# split or break the answer's headers.
_REQUEST_ID = re.compile(r"[!-~]{1,64}")


class NotifView(APIView):
    authentication_classes = [SignatureAuthentication]
    permission_classes = []
    throttle_classes = [ClientRateThrottle]
    # No multipart: its file parts would be written to disk before the signature is checked.
    parser_classes = [FormParser, StrictJSONParser]
    renderer_classes = [NotifJSONRenderer, XMLRenderer]
    content_negotiation_class = FormatNegotiation

    def initialize_request(self, request, *args, **kwargs):
        request = super().initialize_request(request, *args, **kwargs)
        given = request.headers.get("X-Request-ID", "")[:64]
        request.kokatto_request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        return request

    def initial(self, request, *args, **kwargs):
        # A wrong method is answered as such, before the signature is checked.
        if request.method not in ("GET", "POST", "OPTIONS", "HEAD"):
            raise MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["X-Request-ID"] = request.kokatto_request_id
        return response

    def get_exception_handler(self):
        return api_exception_handler

    @notif_get_schema
    def get(self, request):
        return self.operate(request)

    @notif_post_schema
    def post(self, request):
        return self.operate(request)

    def operate(self, request):
        parameters = read_parameters(request)
        if parameters.get("format", "json") not in ("json", "xml"):
            raise validation_error({"format": ["Either json or xml."]})
        operation = parameters.get("operation", "")
        if not operation:
            raise validation_error({"operation": ["Required: create, status or cancel."]})
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise ApiError(
                code="UNSUPPORTED_OPERATION",
                message=f"Unknown operation {operation!r}; use create, status or cancel.",
                http_status=400,
            )
        try:
            return handler(client=request.user, parameters=parameters)
        except IntakeError as exc:
            raise ApiError(
                code=exc.code,
                message=exc.message,
                http_status=_INTAKE_STATUS[exc.code],
                errors=exc.errors,
            ) from None


@extend_schema(exclude=True)
class NotifTrailingSlashView(NotifView):
    """/notif/ answers like /notif; the schema documents it once."""


def create(*, client, parameters):
    if not parameters.get("appType"):
        raise validation_error({"appType": ["Required for create."]})
    values = application_values(parameters)
    result = notification_create(
        client=client,
        application_code=parameters["appType"],
        reference=parameters.get("clientNotifRefId", ""),
        values=values,
        send_at=parameters.get("sendAt", ""),
        expires_at=parameters.get("expiresAt", ""),
    )
    if result.created:
        body = notification_body(
            result.notification, message="Accepted.", deliveries=result.deliveries
        )
        return Response(body, status=201)
    message = "Already accepted; nothing was created or sent again."
    body = notification_body(result.notification, message=message, deliveries=result.deliveries)
    return Response(body, status=200)


def status(*, client, parameters):
    notification = notification_get(client=client, reference=_reference(parameters))
    return Response(notification_body(notification, message="Found."))


def cancel(*, client, parameters):
    notification = notification_get(client=client, reference=_reference(parameters))
    notification = notification_cancel(notification=notification)
    return Response(notification_body(notification, message="Cancelled."))


OPERATIONS = {"create": create, "status": status, "cancel": cancel}


def _reference(parameters) -> str:
    reference = parameters.get("clientNotifRefId", "")
    if not reference:
        raise validation_error({"clientNotifRefId": ["This field is required."]})
    return reference
