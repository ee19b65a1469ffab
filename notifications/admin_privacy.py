"""What the notification admin adds for personal data: every page view recorded, the CSV
export of the filtered list, and when a notification's personal data was (or will be)
purged. The work is in notifications/access_records.py, export.py and retention.py.
"""

import zoneinfo
from datetime import datetime

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path
from django.utils import timezone

from clients.admin_scoping import parse_id
from clients.roles import is_operator, visible_clients
from notifications.access_records import (
    access_record_export,
    access_record_export_done,
    access_record_search,
    access_record_view,
)
from notifications.export import notifications_csv
from notifications.models import PersonalDataAccess, RetentionRun
from notifications.retention import notification_purge_due


class AccessRecordedMixin:
    """Record every view of a change page (a notification's, or a delivery's), and every
    search of the list.

    `notification_of(obj)` gives the notification the page shows. Only a page the user
    may see is recorded: `get_object` goes through the admin's client scoping.
    """

    def notification_of(self, obj):
        return obj

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            obj = self.get_object(request, unquote(object_id))
            if obj is not None:
                access_record_view(request=request, notification=self.notification_of(obj))
        return response

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        searched = request.GET.get("q", "").strip()
        if request.method == "GET" and response.status_code == 200 and searched:
            access_record_search(request=request)
        return response


class NotificationPersonalDataMixin(AccessRecordedMixin):
    """The notification admin's part: access records, the CSV export, the purge's date."""

    def get_urls(self):
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}_export"
        export = path("export/", self.admin_site.admin_view(self.export_view), name=name)
        return [export, *super().get_urls()]

    def export_view(self, request):
        """The current list (its filters, search and order, the user's clients only) as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("These filters are not valid.")
        record = access_record_export(request=request)
        rows = notifications_csv(
            notifications=changelist.queryset,
            time_zone=_one_time_zone(request),
            on_done=lambda count: access_record_export_done(record=record, rows=count),
        )
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="notifications-{stamp}.csv"'
        return response

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return [*fields, "personal_data"] if obj is not None else fields

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "personal_data"]

    @admin.display(description="personal data")
    def personal_data(self, obj):
        zone = zoneinfo.ZoneInfo(obj.client.time_zone)
        if obj.purged_at:
            return f"purged on {_local(obj.purged_at, zone)}"
        due = notification_purge_due(notification=obj)
        return f"kept; purged once finished and after {_local(due, zone)}"


def _local(moment: datetime, zone: zoneinfo.ZoneInfo) -> str:
    return timezone.localtime(moment, zone).strftime("%Y-%m-%d %H:%M %Z")


def _one_time_zone(request) -> str | None:
    """The time zone of every client the export may hold, or None when they differ."""
    clients = visible_clients(request.user)
    chosen = parse_id(request.GET.get("client", ""))
    if chosen is not None:
        clients = clients.filter(pk=chosen)
    zones = set(clients.values_list("time_zone", flat=True).distinct()[:2])
    return zones.pop() if len(zones) == 1 else None


class OperatorsOnlyReadOnlyAdmin(admin.ModelAdmin):
    """Records the platform writes, listed for operators only and never edited or deleted."""

    def has_module_permission(self, request):
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PersonalDataAccessAdmin(OperatorsOnlyReadOnlyAdmin):
    list_display = ["at", "username", "kind", "client", "reference", "row_count", "address"]
    list_filter = ["kind", "at", "user", "client"]
    list_select_related = ["client"]
    search_fields = ["=reference", "=username"]
    search_help_text = "Exact clientNotifRefId or user name."
    date_hierarchy = "at"
    show_full_result_count = False
    fields = [
        "at",
        "username",
        "user",
        "kind",
        "address",
        "client",
        "notification",
        "reference",
        "page",
        "filters",
        "row_count",
    ]


class RetentionRunAdmin(OperatorsOnlyReadOnlyAdmin):
    list_display = ["started_at", "finished_at", "counts"]
    fields = ["started_at", "finished_at", "counts"]


admin.site.register(PersonalDataAccess, PersonalDataAccessAdmin)
admin.site.register(RetentionRun, RetentionRunAdmin)
