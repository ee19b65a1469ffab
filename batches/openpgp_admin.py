"""The admin's OpenPGP keys: read-only, fingerprints and the platform's public key to download.

Private keys are never shown; client staff see (and download) only their own client's keys.
"""

from django.contrib import admin
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from batches.models import OpenPGPClientKey, OpenPGPPlatformKey
from clients.admin_scoping import ClientFilter, ClientScopedAdmin, ReadOnlyAdminMixin


@admin.register(OpenPGPPlatformKey)
class OpenPGPPlatformKeyAdmin(ReadOnlyAdminMixin, ClientScopedAdmin):
    list_display = ["client", "fingerprint", "created_at", "retired_at", "download"]
    list_filter = [ClientFilter]
    list_select_related = ["client"]
    fields = ["client", "fingerprint", "created_at", "retired_at", "download"]
    readonly_fields = fields

    @admin.display(description="public key")
    def download(self, key):
        url = reverse("admin:batches_openpgpplatformkey_public", args=[key.pk])
        return format_html('<a href="{}">download</a>', url)

    def get_urls(self):
        return [
            path(
                "<int:key_id>/public-key/",
                self.admin_site.admin_view(self.public_key_view),
                name="batches_openpgpplatformkey_public",
            ),
            *super().get_urls(),
        ]

    def public_key_view(self, request, key_id: int):
        """The armoured public key as a file, for whoever may see the key (scoped by client)."""
        if not self.has_view_permission(request):
            raise Http404
        key = get_object_or_404(self.get_queryset(request), pk=key_id)
        response = HttpResponse(key.public_key, content_type="application/pgp-keys")
        filename = f"kokatto-{key.client.client_id}-{key.fingerprint[-16:]}.asc"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


@admin.register(OpenPGPClientKey)
class OpenPGPClientKeyAdmin(ReadOnlyAdminMixin, ClientScopedAdmin):
    list_display = ["client", "fingerprint", "uploaded_at", "uploaded_by"]
    list_select_related = ["client", "uploaded_by"]
    fields = ["client", "fingerprint", "uploaded_at", "uploaded_by", "public_key"]
    readonly_fields = fields
