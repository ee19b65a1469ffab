"""The gateway's audit trail in the admin: read-only, scoped by client.

Imported by batches/admin.py. Operators and support see every event; client staff
only their own client's (a login refused to an unknown user belongs to no client,
so only operators and support see it).
"""

from django.contrib import admin

from batches.models import GatewayEvent
from clients.admin_scoping import ClientFilter, ClientScopedAdmin, ReadOnlyAdminMixin


@admin.register(GatewayEvent)
class GatewayEventAdmin(ReadOnlyAdminMixin, ClientScopedAdmin):
    list_display = [
        "at",
        "client",
        "username",
        "protocol",
        "address",
        "action",
        "file_name",
        "size_bytes",
        "outcome",
    ]
    list_filter = [ClientFilter, "action", "outcome", "protocol"]
    list_select_related = ["client"]
    search_fields = ["username", "file_name"]
    fields = [
        "at",
        "client",
        "account",
        "username",
        "protocol",
        "address",
        "action",
        "file_name",
        "size_bytes",
        "sha256",
        "duration_seconds",
        "outcome",
        "reason",
    ]
    readonly_fields = fields
