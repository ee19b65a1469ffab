from django.contrib import admin, messages
from django.db.models import Exists, OuterRef
from django.utils.html import format_html, format_html_join

from clients.admin_scoping import (
    ApplicationFilter,
    ClientFilter,
    ClientScopedAdmin,
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
)
from clients.media import medium_choices
from clients.roles import is_operator, sees_failure_detail, visible_clients
from notifications.admin_privacy import AccessRecordedMixin, NotificationPersonalDataMixin
from notifications.dispatch import delivery_retry
from notifications.dispatch_queue import enqueue_dispatch
from notifications.failures import detail_for_client, failure_category
from notifications.intake import IntakeError, notification_cancel
from notifications.models import ClientCallback, Delivery, DeliveryEvent, Notification
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
    fields = ["medium", "recipient", "status", "attempts", "provider", "last_error", "updated_at"]
    categorised = {"last_error": "last_error_category"}
    show_change_link = True


class ClientCallbackInline(FailureCategoryMixin, ReadOnlyInline):
    model = ClientCallback
    verbose_name_plural = "callbacks to the client"
    fields = ["created_at", "url", "status_reported", "state", "attempts", "last_response"]
    categorised = {"last_response": "last_response_category"}

    @admin.display(description="status")
    def status_reported(self, callback):
        return callback.payload.get("status", "")


class ExactReferenceSearchMixin:
    """Search is an exact clientNotifRefId match: support pastes the id the customer gave.

    The admin's default icontains search would scan the whole table. The match
    also lists the clients the user may see (already the queryset's scope), so
    that PostgreSQL answers it with one probe a client of the unique (client,
    reference) index: there is no index on the reference alone, one index fewer
    to keep up to date for each batch line (tests/admin/test_support_search_plan.py).
    """

    notification_path = ""  # from the admin's model to its notification ("notification__")
    search_help_text = "Exact clientNotifRefId, across every client you can see."

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        clients = list(visible_clients(request.user).values_list("pk", flat=True))
        path = self.notification_path
        return queryset.filter(**{f"{path}client_id__in": clients, f"{path}reference": term}), False


@admin.register(Notification)
class NotificationAdmin(
    NotificationPersonalDataMixin,
    FailureCategoryMixin,
    ExactReferenceSearchMixin,
    ReadOnlyAdminMixin,
    ClientScopedAdmin,
):
    list_display = ["reference", "client", "application", "status", "source", "created_at"]
    list_select_related = ["client", "application__client"]
    list_filter = [ClientFilter, ApplicationFilter, "status", MediumFilter, "source", "created_at"]
    search_fields = ["reference"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = [
        "reference",
        "client",
        "application",
        "status",
        "source",
        "batch",
        "parameters",
        "created_at",
        "updated_at",
        "timeline",
    ]
    readonly_fields = ["parameters", "timeline"]
    categorised = {"timeline": "timeline_for_client"}
    inlines = [DeliveryInline, ClientCallbackInline]
    actions = ["cancel_notifications"]

    def has_operate_permission(self, request):
        return is_operator(request.user)

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
                entry.at.strftime("%Y-%m-%d %H:%M:%S %Z"),
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
    AccessRecordedMixin,
    FailureCategoryMixin,
    ExactReferenceSearchMixin,
    ReadOnlyAdminMixin,
    ClientScopedAdmin,
):
    client_path = "notification__client"
    application_path = "notification__application"
    notification_path = "notification__"
    list_display = ["notification", "medium", "recipient", "status", "attempts", "updated_at"]
    list_select_related = ["notification__client"]
    list_filter = [ClientFilter, ApplicationFilter, "status", "medium"]
    search_fields = ["notification__reference"]
    show_full_result_count = False
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
