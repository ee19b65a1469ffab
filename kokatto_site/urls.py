from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "Kokatto notification platform"
admin.site.site_title = "Kokatto"
admin.site.index_title = "Control panel"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
