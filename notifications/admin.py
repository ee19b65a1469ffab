import zoneinfo

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join

from clients.admin_scoping import (
    ApplicationFilter,
    ClientFilter,
    ClientScopedAdmin,
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    parse_id,
)
from clients.media import medium_choices
from clients.roles import is_operator, sees_failure_detail, visible_clients
from notifications.admin_privacy import AccessRecordedMixin, NotificationPersonalDataMixin
from notifications.dispatch import delivery_retry
from notifications.dispatch_queue import enqueue_dispatch
from notifications.failures import detail_for_client, failure_category
from notifications.intake import IntakeError, notification_cancel
from notifications.models import ClientCallback, Delivery, DeliveryEvent, Notification
from notifications.search import delivery_ids_found, notification_ids_found, search_term_read
from notifications.timeline import TimelineEntry, notification_timeline


class MediumFilter(admin.SimpleListFilter):
    title = "medium"
    parameter_name = "medium"

    def lookups(self, request, model_admin):
        return medium_choices()

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(
            Exists(Delivery.objects.filter(notification=OuterRef("pk"), medium=self.value()))
        )


class FailureCategoryMixin:
    """Client staff see the fields of `categorised` (field -> the method showing its
    category or client view) in place of the fields; platform staff see the fields."""

    categorised: dict[str, str] = {}

    def get_fields(self, request, obj=None):
        return self._for_viewer(request, super().get_fields(request, obj))

    def get_readonly_fields(self, request, obj=None):
        fields = self._for_viewer(request, super().get_readonly_fields(request, obj))
        if sees_failure_detail(request.user):
            return fields
        return list(dict.fromkeys([*fields, *self.categorised.values()]))

    def _for_viewer(self, request, fields):
        if sees_failure_detail(request.user):
            return fields
        return list(dict.fromkeys(self.categorised.get(name, name) for name in fields))

    @admin.display(description="last error")
    def last_error_category(self, obj):
        return failure_category(obj.last_error)

    @admin.display(description="last response")
    def last_response_category(self, obj):
        return failure_category(obj.last_response)

    @admin.display(description="detail")
    def detail_for_client(self, obj):
        return detail_for_client(obj.detail)


class DeliveryInline(FailureCategoryMixin, ReadOnlyInline):
    model = Delivery
    fields = [
        "medium",
        "recipient",
        "rendered_text",
        "template_version",
        "status",
        "attempts",
        "provider",
        "provider_message_id",
        "last_error",
        "sent_at",
        "delivered_at",
    ]
    categorised = {"last_error": "last_error_category"}
    show_change_link = True

    @admin.display(description="rendered text, as sent")
    def rendered_text(self, delivery):
        if not delivery.body:
            return "— (not rendered yet)"
        subject = (
            format_html("<strong>{}</strong><br>", delivery.subject) if delivery.subject else ""
        )
        return format_html('{}<span class="rendered-text">{}</span>', subject, delivery.body)


class ClientCallbackInline(FailureCategoryMixin, ReadOnlyInline):
    model = ClientCallback
    verbose_name_plural = "callbacks to the client"
    fields = ["created_at", "url", "status_reported", "state", "attempts", "last_response"]
    categorised = {"last_response": "last_response_category"}

    @admin.display(description="status")
    def status_reported(self, callback):
        return callback.payload.get("status", "")


class SupportSearchMixin:
    """The search box finds by reference, phone number or email address, each from an
    index (notifications/search.py), in the clients the user may see."""

    search_help_text = (
        "A clientNotifRefId (exact), a phone number (0812-3456-7890, +62 812…) or an email "
        "address, across every client you can see."
    )
    ids_found = staticmethod(notification_ids_found)

    def get_search_results(self, request, queryset, search_term):
        term = search_term_read(search_term)
        if not term.reference:
            return queryset, False
        clients = list(visible_clients(request.user).values_list("pk", flat=True))
        return queryset.filter(pk__in=self.ids_found(term, clients)), False


class BatchFilter(admin.SimpleListFilter):
    """`?batch=<id>`: one batch's notifications, as linked from the batch's page. Shown only
    when used: offering every batch as a choice would list thousands."""

    title = "batch"
    parameter_name = "batch"

    def lookups(self, request, model_admin):
        return [(self.value(), f"batch {self.value()}")] if self.value() else []

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        pk = parse_id(self.value())
        return queryset.none() if pk is None else queryset.filter(batch_id=pk)


class ClientTimeZoneMixin:
    """A change page shown in its client's time zone: every time on it, named at the top
    by `times_shown_in` (settings.TIME_ZONE when the row is not found)."""

    client_path = "client"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        row = self.get_object(request, unquote(object_id))
        client = row
        for name in self.client_path.split("__") if row else []:
            client = getattr(client, name)
        zone = client.time_zone if row else settings.TIME_ZONE
        with timezone.override(zoneinfo.ZoneInfo(zone)):
            response = super().change_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()  # now, while the client's time zone is current
        return response

    @admin.display(description="times shown in")
    def times_shown_in(self, obj):
        now = timezone.localtime()
        zone = timezone.get_current_timezone_name()
        return f"{zone} ({now:%Z}, UTC{now:%z}): every time on this page"


@admin.register(Notification)
class NotificationAdmin(
    ClientTimeZoneMixin,
    NotificationPersonalDataMixin,
    FailureCategoryMixin,
    SupportSearchMixin,
    ReadOnlyAdminMixin,
    ClientScopedAdmin,
):
    list_display = ["reference", "client", "application", "status", "source", "created_at"]
    list_select_related = ["client", "application__client"]
    list_filter = [
        ClientFilter,
        ApplicationFilter,
        "status",
        MediumFilter,
        "source",
        BatchFilter,
        "created_at",  # date ranges on the created_at index (?created_at__gte=…&__lt=…)
    ]
    search_fields = ["reference"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table per choice
    paginator = EstimatedCountPaginator
    fields = [
        "times_shown_in",
        "reference",
        "client",
        "application",
        "status",
        "received",
        "parameters",
        "send_at",
        "expires_at",
        "updated_at",
        "timeline",
    ]
    readonly_fields = ["times_shown_in", "received", "parameters", "timeline"]
    categorised = {"timeline": "timeline_for_client"}
    inlines = [DeliveryInline, ClientCallbackInline]
    actions = ["cancel_notifications"]
    change_form_template = "admin/notifications/notification/change_form.html"

    def has_operate_permission(self, request):
        return is_operator(request.user)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_operate": is_operator(request.user)}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<int:notification_id>/retry/",
                self.admin_site.admin_view(self.retry_view),
                name="notifications_notification_retry",
            ),
            path(
                "<int:notification_id>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="notifications_notification_cancel",
            ),
            *super().get_urls(),
        ]

    def _operated(self, request, notification_id: int) -> Notification:
        """The notification an operator's button acts on: POST only, operators only (the
        server checks; the button is only a convenience), within the user's clients."""
        if request.method != "POST":
            raise PermissionDenied("Use the page's button (POST).")
        if not self.has_operate_permission(request):
            raise PermissionDenied("Only operators retry or cancel notifications.")
        return get_object_or_404(self.get_queryset(request), pk=notification_id)

    def retry_view(self, request, notification_id: int):
        notification = self._operated(request, notification_id)
        detail = f"retried by {request.user.get_username()}"
        retried = sum(
            delivery_retry(delivery=delivery, detail=detail)
            for delivery in notification.deliveries.all()
        )
        if retried:
            enqueue_dispatch()
            self.message_user(request, f"{retried} failed delivery(ies) queued again.")
        else:
            self.message_user(
                request, "No delivery had failed: nothing to retry.", messages.WARNING
            )
        return redirect("admin:notifications_notification_change", notification.pk)

    def cancel_view(self, request, notification_id: int):
        notification = self._operated(request, notification_id)
        try:
            notification_cancel(notification=notification)
        except IntakeError as exc:
            self.message_user(request, exc.message, messages.WARNING)
        else:
            self.message_user(request, "Cancelled: nothing more will be sent.")
        return redirect("admin:notifications_notification_change", notification.pk)

    @admin.display(description="received")
    def received(self, obj):
        at = formats.localize(timezone.template_localtime(obj.created_at))
        if obj.batch_id is None:
            return f"through the API at {at}"
        url = reverse("admin:batches_batch_change", args=[obj.batch_id])
        return format_html(
            'in batch <a href="{}">{}</a>, line {}, at {}',
            url,
            obj.batch.file_name,
            obj.batch_line,
            at,
        )

    @admin.action(
        description="Cancel selected notifications (what is not sent yet)", permissions=["operate"]
    )
    def cancel_notifications(self, request, queryset):
        cancelled, refused = 0, []
        for notification in queryset:
            try:
                notification_cancel(notification=notification)
                cancelled += 1
            except IntakeError as exc:
                refused.append(f"{notification.reference}: {exc.message}")
        self.message_user(request, f"Cancelled {cancelled} notification(s).")
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)

    @admin.display(description="parameters")
    def parameters(self, obj):
        return (
            format_html_join("", "<div><code>{}</code> = {}</div>", sorted(obj.params.items()))
            or "—"
        )

    @admin.display(description="status history")
    def timeline(self, obj):
        return _timeline_table(notification_timeline(obj))

    @admin.display(description="status history")
    def timeline_for_client(self, obj):
        return _timeline_table(notification_timeline(obj, for_client=True))


def _timeline_table(entries: list[TimelineEntry]) -> str:
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td></tr>",
        (
            (
                timezone.localtime(entry.at).strftime("%Y-%m-%d %H:%M:%S %Z"),
                entry.medium,
                entry.old_status or "—",
                entry.new_status,
                entry.detail,
            )
            for entry in entries
        ),
    )
    return format_html(
        "<table><thead><tr><th>time</th><th>medium</th><th>change</th><th>detail</th>"
        "</tr></thead><tbody>{}</tbody></table>",
        rows,
    )


class DeliveryEventInline(FailureCategoryMixin, ReadOnlyInline):
    model = DeliveryEvent
    fields = ["at", "old_status", "new_status", "detail"]
    categorised = {"detail": "detail_for_client"}


@admin.register(Delivery)
class DeliveryAdmin(
    ClientTimeZoneMixin,
    AccessRecordedMixin,
    FailureCategoryMixin,
    SupportSearchMixin,
    ReadOnlyAdminMixin,
    ClientScopedAdmin,
):
    client_path = "notification__client"
    application_path = "notification__application"
    ids_found = staticmethod(delivery_ids_found)
    list_display = ["notification", "medium", "recipient", "status", "attempts", "updated_at"]
    list_select_related = ["notification__client"]
    list_filter = [ClientFilter, ApplicationFilter, "status", "medium"]
    search_fields = ["notification__reference"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = [
        "times_shown_in",
        "notification",
        "medium",
        "recipient",
        "subject",
        "body",
        "html_body",
        "template_version",
        "status",
        "attempts",
        "claims",
        "next_attempt_at",
        "lease_expires_at",
        "provider",
        "provider_message_id",
        "last_error",
        "created_at",
        "updated_at",
        "sent_at",
        "delivered_at",
    ]
    readonly_fields = ["times_shown_in"]
    paginator = EstimatedCountPaginator
    categorised = {"last_error": "last_error_category"}
    inlines = [DeliveryEventInline]
    actions = ["retry_deliveries"]

    def has_operate_permission(self, request):
        return is_operator(request.user)

    def notification_of(self, delivery):
        return delivery.notification

    @admin.action(description="Retry selected failed deliveries", permissions=["operate"])
    def retry_deliveries(self, request, queryset):
        detail = f"retried by {request.user.get_username()}"
        retried = sum(delivery_retry(delivery=delivery, detail=detail) for delivery in queryset)
        if retried:
            enqueue_dispatch()
        self.message_user(
            request, f"{retried} failed deliveries queued again; others were not failed."
        )
