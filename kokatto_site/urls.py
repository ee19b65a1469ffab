from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from kokatto_site.api_docs import api_docs_view
from notifications.api.receipt_views import (
    gateway_receipt,
    twilio_status_callback,
    whatsapp_webhook,
)
from notifications.api.views import NotifTrailingSlashView, NotifView

admin.site.site_header = "Kokatto notification platform"
admin.site.site_title = "Kokatto"
admin.site.index_title = "Control panel"
# Says whether two-factor sign-in is on (kokatto_site/sign_in/).
admin.site.login_template = "sign_in/login.html"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/two-factor/", include("kokatto_site.sign_in.urls")),
    path("admin/", admin.site.urls),
    path("notif", NotifView.as_view(), name="notif"),
    path("notif/", NotifTrailingSlashView.as_view()),
    path("callbacks/twilio/", twilio_status_callback, name="receipts-twilio"),
    path("callbacks/http/<str:token>/", gateway_receipt, name="receipts-gateway"),
    path("callbacks/whatsapp/", whatsapp_webhook, name="receipts-whatsapp"),
    path("api/schema/", api_docs_view(SpectacularAPIView.as_view()), name="schema"),
    # Its script is served as a file (/api/docs/?script): no inline script under the CSP.
    path(
        "api/docs/",
        api_docs_view(
            SpectacularSwaggerSplitView.as_view(
                url_name="schema", template_name="api_docs/swagger_ui.html"
            )
        ),
        name="swagger-ui",
    ),
]
