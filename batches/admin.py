from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.hashers import make_password
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from batches import openpgp_admin  # noqa: F401 (OpenPGP keys)
from batches.file_storage import batch_storage
from batches.gateway import audit_admin, defender_admin  # noqa: F401 (events, bans)
from batches.gateway.identity import gateway_identity
from batches.ingest import ReprocessResult, batch_reprocess
from batches.models import Batch, GatewayAccount, GatewayPublicKey, RejectedLine
from batches.selectors import rejected_lines_search
from clients.admin_scoping import (
    ClientFilter,
    ClientScopedAdmin,
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    parse_id,
)
from clients.roles import is_operator, visible_clients


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdminMixin, ClientScopedAdmin):
    list_display = [
        "file_name",
        "client",
        "status",
        "lines_read",
        "lines_accepted",
        "lines_rejected",
        "progress",
        "duration",
        "result_file",
        "created_at",
    ]
    list_filter = [ClientFilter, "status"]
    list_select_related = ["client"]
    search_fields = ["file_name", "sha256"]
    fields = [
        "client",
        "file_name",
        "status",
        "failure_code",
        "failure_message",
        "duplicate_of",
        "progress",
        "lines_read",
        "lines_accepted",
        "accepted",
        "rejected",
        "duration",
        "result_file",
        "size_bytes",
        "sha256",
        "encryption",
        "runs",
        "runs_since_progress",
        "inbox_path",
        "archived_path",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = ["progress", "accepted", "rejected", "duration", "result_file"]
    actions = ["reprocess"]
    rejected_per_page = 50

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self.get_object(request, object_id)  # None if not the user's to see
        if batch is not None and batch.lines_rejected:
            extra_context = {**(extra_context or {}), "rejected": self._rejected(batch, request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _rejected(self, batch, request) -> dict:
        """A page of the batch's rejected lines, searched by ?rejected_q=, for the batch page.

        Unsearched, the count is the batch's own counter: no COUNT over a million rows.
        """
        search = request.GET.get("rejected_q", "").strip()
        lines = rejected_lines_search(batch=batch, search=search)
        paginator = Paginator(lines, self.rejected_per_page)
        if not search:
            paginator.count = batch.lines_rejected
        return {
            "page": paginator.get_page(request.GET.get("rejected_page")),
            "search": search,
            "query": f"{urlencode({'rejected_q': search})}&" if search else "",
        }

    def has_operate_permission(self, request):
        return is_operator(request.user)

    @admin.action(
        description="Reprocess selected failed batches (e.g. after the password was corrected)",
        permissions=["operate"],
    )
    def reprocess(self, request, queryset):
        outcomes = [
            (batch, batch_reprocess(batch=batch)) for batch in queryset.select_related("client")
        ]
        queued = sum(outcome == ReprocessResult.QUEUED for _, outcome in outcomes)
        self.message_user(request, f"{queued} failed batch(es) queued again.")
        for batch, outcome in outcomes:
            if outcome == ReprocessResult.NOT_FAILED:
                self.message_user(
                    request, f"{batch}: only FAILED batches can be reprocessed.", messages.WARNING
                )
            elif outcome == ReprocessResult.NAME_IN_USE:
                self.message_user(
                    request,
                    f"{batch}: a newer upload of this name is being ingested; "
                    "reprocess it once that one is done.",
                    messages.WARNING,
                )

    @admin.display(description="progress")
    def progress(self, batch):
        percent = batch.progress_percent
        return format_html(
            '<progress max="100" value="{}" title="{}%"></progress> {}%', percent, percent, percent
        )

    @admin.display(description="duration")
    def duration(self, batch):
        if batch.started_at is None:
            return "—"
        seconds = int(((batch.finished_at or batch.updated_at) - batch.started_at).total_seconds())
        minutes, seconds = divmod(seconds, 60)
        return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"

    @admin.display(description="result file")
    def result_file(self, batch):
        if not batch.result_path:
            return "—"
        url = reverse("admin:batches_batch_result", args=[batch.pk])
        return format_html('<a href="{}">{}</a>', url, batch.result_path.rsplit("/", 1)[-1])

    @admin.display(description="notifications")
    def accepted(self, batch):
        if not batch.lines_accepted:
            return "—"
        url = reverse("admin:notifications_notification_changelist") + f"?batch={batch.pk}"
        return format_html('<a href="{}">its notifications</a>', url)

    @admin.display(description="rejected lines")
    def rejected(self, batch):
        if not batch.lines_rejected:
            return "0"
        url = reverse("admin:batches_rejectedline_changelist") + f"?batch={batch.pk}"
        return format_html('<a href="{}">{} rejected lines</a>', url, batch.lines_rejected)

    def get_urls(self):
        return [
            path(
                "<int:batch_id>/result/",
                self.admin_site.admin_view(self.result_view),
                name="batches_batch_result",
            ),
            *super().get_urls(),
        ]

    def result_view(self, request, batch_id: int):
        """Download the result file, for whoever may see the batch (scoped by client)."""
        if not self.has_view_permission(request):
            raise Http404
        batch = get_object_or_404(self.get_queryset(request), pk=batch_id)
        storage = batch_storage()
        if not batch.result_path or not storage.exists(batch.result_path):
            raise Http404("This batch has no result file.")
        return FileResponse(
            storage.open(batch.result_path, "rb"),
            as_attachment=True,
            filename=batch.result_path.rsplit("/", 1)[-1],
        )


class BatchFilter(admin.SimpleListFilter):
    """The rejected lines of one batch (the batch page links here)."""

    title = "batch"
    parameter_name = "batch"

    def lookups(self, request, model_admin):
        # Only the batch asked for, and only if the user may see it.
        pk = parse_id(self.value() or "")
        batch = Batch.objects.none()
        if pk:
            batch = Batch.objects.filter(
                pk=pk, client__in=visible_clients(request.user)
            ).select_related("client")
        return [(str(b.pk), str(b)) for b in batch]

    def queryset(self, request, queryset):
        pk = parse_id(self.value() or "")
        return queryset.filter(batch_id=pk) if pk else queryset


class CodeFilter(admin.SimpleListFilter):
    """The codes of the chosen batch's rejections: listing every code of the whole table
    would read all of it at every page view."""

    title = "code"
    parameter_name = "code"

    def lookups(self, request, model_admin):
        pk = parse_id(request.GET.get(BatchFilter.parameter_name, ""))
        if not pk:
            return []
        codes = model_admin.get_queryset(request).filter(batch_id=pk).values_list("code", flat=True)
        return [(code, code) for code in codes.distinct().order_by("code")]

    def queryset(self, request, queryset):
        return queryset.filter(code=self.value()) if self.value() else queryset


@admin.register(RejectedLine)
class RejectedLineAdmin(ReadOnlyAdminMixin, ClientScopedAdmin):
    client_path = "batch__client"
    list_display = ["line", "reference", "code", "message", "batch"]
    list_filter = [BatchFilter, CodeFilter]
    list_select_related = ["batch__client"]
    search_fields = ["reference", "=code", "message"]
    # batch_id, not batch: ordering by the batch would sort by the batches' own ordering.
    ordering = ["batch_id", "line"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 100


class GatewayAccountForm(forms.ModelForm):
    new_password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Sets the password. Leave empty to keep it. Stored hashed, never shown.",
    )


class GatewayPublicKeyInline(admin.TabularInline):
    """Client staff add and remove their own accounts' keys here; nobody edits one in place."""

    model = GatewayPublicKey
    extra = 0
    fields = ["key", "comment", "fingerprint", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return ["fingerprint", "created_at"]

    def has_change_permission(self, request, obj=None):
        # Existing keys are shown read-only (a key is replaced by adding and removing).
        return False

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form.base_fields["key"].widget.attrs.update(rows=2, cols=60)
        return formset


@admin.register(GatewayAccount)
class GatewayAccountAdmin(ClientScopedAdmin):
    """Operators manage every account; client staff see their own and manage its keys."""

    form = GatewayAccountForm
    list_display = ["username", "client", "enabled", "sftp_allowed", "ftps_allowed", "updated_at"]
    list_filter = [ClientFilter, "enabled"]
    list_select_related = ["client"]
    search_fields = ["username"]
    inlines = [GatewayPublicKeyInline]
    account_fields = ["client", "username", "enabled", "sftp_allowed", "ftps_allowed"]

    def get_fields(self, request, obj=None):
        extra = ["password_status", "new_password"] if is_operator(request.user) else []
        return [*self.account_fields, "allowed_networks", *extra, "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        if is_operator(request.user):
            return ["password_status", "created_at", "updated_at"]
        return [*self.account_fields, "allowed_networks", "created_at", "updated_at"]

    def changelist_view(self, request, extra_context=None):
        # Clients pin these fingerprints when they first connect (the list's template shows them).
        context = {**(extra_context or {}), "gateway_identity": gateway_identity()}
        return super().changelist_view(request, context)

    @admin.display(description="Password")
    def password_status(self, obj):
        return "set" if obj and obj.password else "not set"

    def save_model(self, request, obj, form, change):
        new_password = form.cleaned_data.get("new_password")
        if new_password:
            obj.password = make_password(new_password)
        super().save_model(request, obj, form, change)
