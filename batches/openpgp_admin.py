"""The admin's OpenPGP keys: each client's keys on one page, their management by role.

- Everyone who may see a client's keys (operators, support, the client's staff) sees their
  fingerprints (grouped, "ABCD 1234 …") and downloads the platform's public keys.
- Operators generate, rotate and retire the platform's key pairs (confirmation pages, POST).
- Operators and the client's own staff set the client's public key: upload, check, confirm.

Private keys are never shown. Every page is scoped by client (404 for a client the user does
not see); an action the role may not take is 403 on the server, whatever the page offered.
The logic is in batches/openpgp_keys.py; these views only ask, check roles and show.
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from batches.models import OpenPGPClientKey, OpenPGPPlatformKey
from batches.openpgp_keys import (
    OpenPGPKeyError,
    client_key_describe,
    client_key_set,
    fingerprint_grouped,
    key_file_armoured,
    platform_key_current,
    platform_key_ensure,
    platform_key_retire,
    platform_key_rotate,
)
from clients.admin_scoping import ClientFilter, ClientScopedAdmin, ReadOnlyAdminMixin
from clients.models import Client
from clients.roles import is_operator, visible_clients

CLIENT_KEY_PERMISSION = "batches.change_openpgpclientkey"
# The upload's confirmation carries the checked key, signed for this client and this user.
UPLOAD_SIGNING_NAMESPACE = "batches.openpgp_admin.client-key-upload"
UPLOAD_TOKEN_MAX_AGE = 15 * 60  # seconds between the check and the confirmation
CLIENTS_PER_PAGE = 50
CHANGE_LIST_TEMPLATE = "admin/batches/openpgp/change_list.html"


def keys_page_url(client_pk: int) -> str:
    return reverse("admin:batches_openpgp_client", args=[client_pk])


def _user_label(user) -> str:
    return user.get_username() if user is not None else "a command"


def _client_for(request, client_pk: int) -> Client:
    """The client, if the user may see it; 404 otherwise (another client's looks absent)."""
    return get_object_or_404(visible_clients(request.user), pk=client_pk)


def _operators_only(request) -> None:
    if not is_operator(request.user):
        raise PermissionDenied("Only operators manage the platform's OpenPGP keys.")


class OpenPGPPagesMixin:
    """Fingerprint and link columns, and the pages of batches/templates/admin/batches/openpgp/."""

    def _page(self, request, template: str, title: str, **context):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            **context,
        }
        return TemplateResponse(request, f"admin/batches/openpgp/{template}", context)

    @admin.display(description="fingerprint", ordering="fingerprint")
    def fingerprint_shown(self, key):
        return fingerprint_grouped(key.fingerprint)

    @admin.display(description="keys")
    def keys_page(self, key):
        return format_html('<a href="{}">all keys of the client</a>', keys_page_url(key.client_id))


@admin.register(OpenPGPPlatformKey)
class OpenPGPPlatformKeyAdmin(OpenPGPPagesMixin, ReadOnlyAdminMixin, ClientScopedAdmin):
    change_list_template = CHANGE_LIST_TEMPLATE
    list_display = [
        "client",
        "fingerprint_shown",
        "created_at",
        "retired_at",
        "download",
        "keys_page",
    ]
    list_filter = [ClientFilter]
    list_select_related = ["client"]
    fields = [
        "client",
        "fingerprint_shown",
        "created_at",
        "created_by",
        "retired_at",
        "retired_by",
        "download",
        "keys_page",
    ]
    readonly_fields = fields

    @admin.display(description="public key")
    def download(self, key):
        url = reverse("admin:batches_openpgpplatformkey_public", args=[key.pk])
        return format_html('<a href="{}">download</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:key_id>/public-key/",
                view(self.public_key_view),
                name="batches_openpgpplatformkey_public",
            ),
            path(
                "<int:key_id>/retire/",
                view(self.retire_view),
                name="batches_openpgpplatformkey_retire",
            ),
            path("clients/", view(self.clients_view), name="batches_openpgp_clients"),
            path(
                "clients/<int:client_pk>/",
                view(self.client_keys_view),
                name="batches_openpgp_client",
            ),
            path(
                "clients/<int:client_pk>/generate/",
                view(require_POST(self.generate_view)),
                name="batches_openpgp_generate",
            ),
            path(
                "clients/<int:client_pk>/rotate/",
                view(self.rotate_view),
                name="batches_openpgp_rotate",
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

    def clients_view(self, request):
        """The clients the user sees, each with its current platform key and its own key."""
        if not self.has_view_permission(request):
            raise Http404
        clients = visible_clients(request.user).order_by("client_id")
        page = Paginator(clients, CLIENTS_PER_PAGE).get_page(request.GET.get("page"))
        active = OpenPGPPlatformKey.objects.filter(client__in=page, retired_at__isnull=True)
        current = {key.client_id: key for key in active.order_by("created_at", "pk")}  # newest
        client_keys = {
            key.client_id: key for key in OpenPGPClientKey.objects.filter(client__in=page)
        }
        rows = [
            {
                "client": client,
                "platform": current.get(client.pk),
                "client_key": client_keys.get(client.pk),
            }
            for client in page
        ]
        return self._page(
            request, "clients.html", "OpenPGP keys by client", page=page, rows=rows, index=True
        )

    def client_keys_view(self, request, client_pk: int):
        """One client's keys: the platform's (with their history) and the client's own."""
        if not self.has_view_permission(request):
            raise Http404
        client = _client_for(request, client_pk)
        current = platform_key_current(client)
        keys = [
            {"key": key, "status": _status(key, current), "retirable": _retirable(key, current)}
            for key in OpenPGPPlatformKey.objects.filter(client=client)
            .select_related("created_by", "retired_by")
            .order_by("-created_at", "-pk")
        ]
        client_key = (
            OpenPGPClientKey.objects.filter(client=client).select_related("uploaded_by").first()
        )
        return self._page(
            request,
            "client_keys.html",
            f"OpenPGP keys of client {client.client_id}",
            client=client,
            hub=True,
            current=current,
            keys=keys,
            client_key=client_key,
            client_key_by=_user_label(client_key.uploaded_by) if client_key else "",
            operator=is_operator(request.user),
            may_set_client_key=request.user.has_perm(CLIENT_KEY_PERMISSION),
        )

    def generate_view(self, request, client_pk: int):
        _operators_only(request)
        client = _client_for(request, client_pk)
        existed = platform_key_current(client)
        key = platform_key_ensure(client, by=request.user)
        if existed is None:
            self.log_addition(request, key, "Generated the client's first key pair.")
            self.message_user(
                request, f"Key pair generated: {fingerprint_grouped(key.fingerprint)}."
            )
        return redirect(keys_page_url(client.pk))

    def rotate_view(self, request, client_pk: int):
        """GET: what a rotation means, to confirm; POST: a new current key."""
        _operators_only(request)
        client = _client_for(request, client_pk)
        current = platform_key_current(client)
        if request.method != "POST":
            return self._page(
                request, "rotate.html", "Rotate the platform's key", client=client, current=current
            )
        key = platform_key_rotate(client, by=request.user)
        self.log_addition(request, key, "Rotated: the new current key.")
        self.message_user(
            request,
            f"New current key {fingerprint_grouped(key.fingerprint)}: the client must download "
            "its public key and encrypt to it. The older keys still decrypt until retired.",
        )
        return redirect(keys_page_url(client.pk))

    def retire_view(self, request, key_id: int):
        """GET: what retiring means, to confirm; POST: the key no longer decrypts."""
        _operators_only(request)
        key = get_object_or_404(self.get_queryset(request).select_related("client"), pk=key_id)
        current = platform_key_current(key.client)
        if request.method != "POST":
            return self._page(
                request,
                "retire.html",
                "Retire a platform key",
                client=key.client,
                key=key,
                current=current,
            )
        try:
            platform_key_retire(key, by=request.user)
        except OpenPGPKeyError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.log_change(request, key, "Retired.")
            self.message_user(request, f"Key {fingerprint_grouped(key.fingerprint)} retired.")
        return redirect(keys_page_url(key.client_id))


def _status(key, current) -> str:
    if key.retired_at is not None:
        return "retired"
    if current is not None and key.pk == current.pk:
        return "current"
    return "active: still decrypts"


def _retirable(key, current) -> bool:
    return key.retired_at is None and current is not None and key.pk != current.pk


class ClientKeyUploadForm(forms.Form):
    """The client's public key, pasted or as a file (.asc armoured, .gpg binary)."""

    key_text = forms.CharField(
        label="Armoured public key",
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 72}),
    )
    key_file = forms.FileField(label="or a key file (.asc, .gpg)", required=False)

    def clean(self):
        text, upload = self.cleaned_data.get("key_text"), self.cleaned_data.get("key_file")
        if self.errors:
            return self.cleaned_data
        if bool(text) == bool(upload):
            raise forms.ValidationError("Paste the key or choose a key file (one of them).")
        # One byte past the limit is enough to refuse a huge file without reading it all.
        data = upload.read(settings.OPENPGP_MAX_KEY_BYTES + 1) if upload else text.encode()
        try:
            armoured = key_file_armoured(data)
            self.cleaned_data["description"] = client_key_describe(armoured)
        except OpenPGPKeyError as exc:
            raise forms.ValidationError(str(exc)) from None
        self.cleaned_data["armoured"] = armoured
        return self.cleaned_data


def upload_token(*, client: Client, user, armoured: str) -> str:
    """The checked key, signed for this client and user, carried to the confirmation."""
    payload = {"client": client.pk, "user": user.pk, "key": armoured}
    return signing.dumps(payload, salt=UPLOAD_SIGNING_NAMESPACE, compress=True)


def upload_token_key(token: str, *, client: Client, user) -> str:
    """The key a token carries, if it was issued for this client and user and is recent.

    OpenPGPKeyError otherwise: a token altered, expired, or taken from another client's page.
    """
    try:
        payload = signing.loads(token, salt=UPLOAD_SIGNING_NAMESPACE, max_age=UPLOAD_TOKEN_MAX_AGE)
    except signing.SignatureExpired:
        raise OpenPGPKeyError("The confirmation expired: upload the key again.") from None
    except signing.BadSignature:
        raise OpenPGPKeyError("The confirmation was altered: upload the key again.") from None
    if payload.get("client") != client.pk or payload.get("user") != user.pk:
        raise OpenPGPKeyError(
            "The confirmation was issued for another upload: upload the key again."
        )
    return payload["key"]


@admin.register(OpenPGPClientKey)
class OpenPGPClientKeyAdmin(OpenPGPPagesMixin, ReadOnlyAdminMixin, ClientScopedAdmin):
    change_list_template = CHANGE_LIST_TEMPLATE
    list_display = ["client", "fingerprint_shown", "uploaded_at", "uploaded_by", "keys_page"]
    list_select_related = ["client", "uploaded_by"]
    fields = [
        "client",
        "fingerprint_shown",
        "uploaded_at",
        "uploaded_by",
        "public_key",
        "keys_page",
    ]
    readonly_fields = fields

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "clients/<int:client_pk>/upload/",
                view(self.upload_view),
                name="batches_openpgp_client_key_upload",
            ),
            path(
                "clients/<int:client_pk>/confirm/",
                view(require_POST(self.confirm_view)),
                name="batches_openpgp_client_key_confirm",
            ),
            *super().get_urls(),
        ]

    def _client_for_upload(self, request, client_pk: int) -> Client:
        if not request.user.has_perm(CLIENT_KEY_PERMISSION):
            raise PermissionDenied("Only operators and the client's staff set the client's key.")
        return _client_for(request, client_pk)

    def _client_key_page(self, request, template: str, client: Client, **context):
        title = f"The OpenPGP public key of client {client.client_id}"
        return self._page(request, template, title, client=client, **context)

    def upload_view(self, request, client_pk: int):
        """GET: the form; POST: the key checked and described, to confirm (nothing stored yet)."""
        client = self._client_for_upload(request, client_pk)
        if request.method != "POST":
            form = ClientKeyUploadForm()
            return self._client_key_page(request, "upload.html", client, form=form)
        form = ClientKeyUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self._client_key_page(request, "upload.html", client, form=form)
        token = upload_token(
            client=client, user=request.user, armoured=form.cleaned_data["armoured"]
        )
        description = form.cleaned_data["description"]
        return self._client_key_page(request, "confirm.html", client, key=description, token=token)

    def confirm_view(self, request, client_pk: int):
        """Store the key the confirmation page showed, checked again (client_key_set checks)."""
        client = self._client_for_upload(request, client_pk)
        try:
            armoured = upload_token_key(
                request.POST.get("token", ""), client=client, user=request.user
            )
            key = client_key_set(client, armoured, uploaded_by=request.user)
        except OpenPGPKeyError as exc:
            form = ClientKeyUploadForm()
            return self._client_key_page(request, "upload.html", client, form=form, error=str(exc))
        self.log_change(request, key, "Set the client's public key.")
        self.message_user(request, f"Client key set: {fingerprint_grouped(key.fingerprint)}.")
        return redirect(keys_page_url(client.pk))
