"""The gateway's bans and failed logins in the admin: operators only (by permissions).

Imported by batches/admin.py. Client staff and support have no permission on these
models (kokatto_site/role_permissions.py), so the admin neither lists nor opens them.
"""

from django.contrib import admin, messages
from django.utils import timezone

from batches.gateway.ban_models import GatewayLoginFailure, GatewayScore
from batches.gateway.defender import gateway_bans_lift
from clients.admin_scoping import ReadOnlyAdminMixin


@admin.register(GatewayScore)
class GatewayBanAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The sources banned now; lifting one deletes its row (as unlocking in django-axes)."""

    list_display = ["kind", "value", "banned_until", "ban_count", "last_failure_at"]
    list_filter = ["kind"]
    search_fields = ["value"]
    ordering = ["-banned_until"]
    actions = ["lift_bans"]
    fields = list_display
    readonly_fields = list_display

    def get_queryset(self, request):
        return super().get_queryset(request).filter(banned_until__gt=timezone.now())

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    @admin.action(description="Lift the selected bans", permissions=["delete"])
    def lift_bans(self, request, queryset):
        lifted = gateway_bans_lift(queryset, by=request.user)
        self.message_user(request, f"Lifted {lifted} ban(s).", messages.SUCCESS)


@admin.register(GatewayLoginFailure)
class GatewayLoginFailureAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "address", "username", "protocol", "reason"]
    list_filter = ["protocol", "reason"]
    search_fields = ["=address", "username"]
    fields = list_display
    readonly_fields = list_display
