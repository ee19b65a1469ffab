"""/healthz, /readyz and /metrics, answered before the rest of the middleware.

Load balancers, orchestrators and Prometheus call these over plain HTTP inside the
network, by the machine's address: so no https redirect (SECURE_SSL_REDIRECT), no
ALLOWED_HOSTS check (the Host header is an address), no session, sign-in, second
factor or lock-out, and nothing that touches the database unless the endpoint does.
/metrics has its own access rule (kokatto_site/metrics.py). Placed right after
django-prometheus's first middleware, so that probes still count as requests.
"""

from django.http import HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST

from kokatto_site.health import liveness, readiness
from kokatto_site.metrics import Refusal, metrics_access_check, metrics_exposition


def healthz(request) -> HttpResponse:
    return JsonResponse(liveness())


def readyz(request) -> HttpResponse:
    ready, answer = readiness()
    return JsonResponse(answer, status=200 if ready else 503)


def metrics(request) -> HttpResponse:
    try:
        metrics_access_check(request)
    except Refusal as refusal:
        response = HttpResponse(f"{refusal}\n", status=refusal.status, content_type="text/plain")
        if refusal.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_LATEST)


ENDPOINTS = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics}


class OperationsEndpointsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        endpoint = ENDPOINTS.get(request.path_info)
        if endpoint is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse(status=405)
            response["Allow"] = "GET, HEAD"
        else:
            response = endpoint(request)
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response
