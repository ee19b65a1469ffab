from django.contrib import admin

from clients.admin_scoping import ApplicationFilter, ClientFilter, ClientScopedAdmin
from templates_app.models import ContentTemplate


@admin.register(ContentTemplate)
class ContentTemplateAdmin(ClientScopedAdmin):
    client_path = "application__client"
    list_display = ["application", "medium", "updated_at"]
    list_filter = [ClientFilter, ApplicationFilter, "medium"]
    list_select_related = ["application__client"]
    search_fields = ["application__code", "subject", "body"]
    autocomplete_fields = ["application"]
    fields = ["application", "medium", "subject", "body", "html_body"]
