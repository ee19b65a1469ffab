"""/callbacks/<provider>/: providers' delivery receipts, authenticated per provider."""

import hashlib
import hmac
import json
import logging

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from notifications.backends.http_sms import HttpSmsBackend, twilio_signature
from notifications.receipts import ReceiptOutcome, receipt_record

logger = logging.getLogger(__name__)

# Twilio's MessageStatus values that end a message's journey.
TWILIO_FINAL = {"delivered": True, "undelivered": False, "failed": False}
GENERIC_FINAL = {"delivered": True, "undelivered": False, "failed": False, "rejected": False}


@csrf_exempt
@require_POST
def twilio_status_callback(request):
    """Twilio's status callback, signed with X-Twilio-Signature over the URL it called."""
    url = settings.TWILIO_STATUS_CALLBACK_URL or request.build_absolute_uri()
    parameters = {name: request.POST[name] for name in request.POST}
    token = _twilio_auth_token()
    expected = twilio_signature(url, parameters, token) if token else ""
    given = request.headers.get("X-Twilio-Signature", "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        logger.warning("Twilio receipt with a bad signature for %s", url)
        return HttpResponseForbidden("bad signature")
    status = parameters.get("MessageStatus", "")
    if status in TWILIO_FINAL:
        detail = f"receipt from twilio: {status}" + (
            f" (error {parameters['ErrorCode']})" if parameters.get("ErrorCode") else ""
        )
        receipt_record(
            provider="twilio",
            provider_message_id=parameters.get("MessageSid", ""),
            delivered=TWILIO_FINAL[status],
            detail=detail,
        )
    # Unknown ids and intermediate statuses are acknowledged: a retry would not help.
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def gateway_receipt(request, token: str):
    """A generic gateway's receipt: form or JSON with `id` and `status`, at a secret URL."""
    expected = settings.SMS_GATEWAY_CALLBACK_TOKEN
    if not expected or not hmac.compare_digest(expected.encode(), token.encode()):
        return HttpResponseForbidden("bad token")
    data = request.POST
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body)
        except ValueError:
            return JsonResponse({"error": "malformed JSON"}, status=400)
    status = str(data.get("status", "")).lower()
    result = ReceiptOutcome.IGNORED
    if status in GENERIC_FINAL:
        result = receipt_record(
            provider=_gateway_name(),
            provider_message_id=str(data.get("id", "")),
            delivered=GENERIC_FINAL[status],
            detail=f"receipt from the gateway: {status}",
        )
    return JsonResponse({"result": result})


WHATSAPP_FINAL = {"delivered": True, "read": True, "failed": False}


@csrf_exempt
def whatsapp_webhook(request):
    """Meta's webhook: GET is the subscription handshake, POST carries message statuses.

    POSTs are signed: X-Hub-Signature-256 is "sha256=" + HMAC-SHA256 of the raw
    body, keyed with the app secret.
    """
    if request.method == "GET":
        verify_token = settings.WHATSAPP_VERIFY_TOKEN
        given = request.GET.get("hub.verify_token", "")
        if (
            request.GET.get("hub.mode") == "subscribe"
            and verify_token
            and hmac.compare_digest(verify_token.encode(), given.encode())
        ):
            return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
        return HttpResponseForbidden("bad verify token")
    if request.method != "POST":
        return HttpResponse(status=405)
    secret = settings.WHATSAPP_APP_SECRET
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    given = request.headers.get("X-Hub-Signature-256", "")
    if not secret or not hmac.compare_digest(expected.encode(), given.encode()):
        return HttpResponseForbidden("bad signature")
    try:
        data = json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": "malformed JSON"}, status=400)
    for status in _whatsapp_statuses(data):
        if status.get("status") in WHATSAPP_FINAL:
            errors = status.get("errors") or [{}]
            reason = errors[0].get("title", "") if isinstance(errors[0], dict) else ""
            receipt_record(
                provider="whatsapp-cloud",
                provider_message_id=str(status.get("id", "")),
                delivered=WHATSAPP_FINAL[status["status"]],
                detail=f"receipt from WhatsApp: {status['status']}"
                + (f" ({reason})" if reason else ""),
            )
    return HttpResponse(status=200)


def _whatsapp_statuses(data) -> list[dict]:
    statuses = []
    for entry in data.get("entry", []) if isinstance(data, dict) else []:
        for change in entry.get("changes", []):
            statuses += change.get("value", {}).get("statuses", [])
    return [status for status in statuses if isinstance(status, dict)]


def _gateway_name() -> str:
    """The name the generic gateway's sends are recorded under (its `name` option)."""
    for config in settings.KOKATTO_CHANNEL_BACKENDS.get("sms", []):
        if config["BACKEND"].endswith("HttpSmsBackend"):
            return config.get("OPTIONS", {}).get("name") or HttpSmsBackend.name
    return HttpSmsBackend.name


def _twilio_auth_token() -> str:
    for config in settings.KOKATTO_CHANNEL_BACKENDS.get("sms", []):
        if config["BACKEND"].endswith("TwilioSmsBackend"):
            return config.get("OPTIONS", {}).get("auth_token", "")
    return ""
