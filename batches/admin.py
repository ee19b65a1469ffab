from django.contrib import admin

from batches.models import Batch
from clients.admin_scoping import ClientFilter, ClientScopedAdmin, ReadOnlyAdminMixin


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdminMixin, ClientScopedAdmin):
    list_display = [
        "file_name",
        "client",
        "status",
        "lines_read",
        "lines_accepted",
        "lines_rejected",
        "created_at",
    ]
    list_filter = [ClientFilter, "status"]
    list_select_related = ["client"]
    search_fields = ["file_name"]
