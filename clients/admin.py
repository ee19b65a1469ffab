from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from clients.admin_scoping import ClientFilter, ClientScopedAdmin, ReadOnlyInline
from clients.applications import application_check
from clients.forms import FieldSchemaFormSet
from clients.keys import SecretKeyError, secret_key_create, secret_key_deactivate
from clients.models import Application, ApplicationMedium, Client, Field, SecretKey
from clients.onboarding import client_set_batch_password
from clients.outbound import validate_callback_url
from clients.roles import is_operator, visible_clients


class ClientAdminForm(forms.ModelForm):
    callback_url = forms.URLField(
        label="Status callback URL",
        required=False,
        assume_scheme="https",
        validators=[validate_callback_url],
        help_text=Client._meta.get_field("callback_url").help_text
        + " An https URL of the client's server on the public internet.",
    )
    new_batch_password = forms.CharField(
        label="New batch password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Sets the password of the client's 7z batch files. Leave empty to keep it. "
        "It is stored encrypted and never shown.",
    )

    class Meta:
        model = Client
        fields = [
            "client_id",
            "name",
            "is_active",
            "time_zone",
            "callback_url",
            "quiet_hours_start",
            "quiet_hours_end",
            "api_rate_per_minute",
            "retention_days",
            "staff",
        ]


class ApplicationAdminForm(forms.ModelForm):
    class Meta:
        model = Application
        fields = [
            "client",
            "code",
            "name",
            "brand_name",
            "is_active",
            "sms_segment_limit",
            "sample_values",
        ]

    def _post_clean(self):
        # The checks against the saved fields need the typed values, which the model form
        # copies onto the instance here (before running the model's single-row clean()).
        super()._post_clean()
        if self.has_error("sample_values"):
            return
        for field, message in application_check(application=self.instance).items():
            self.add_error(field if field in self.fields else None, message)


class SecretKeyInline(ReadOnlyInline):
    model = SecretKey
    fields = ["fingerprint", "slot", "is_active", "created_at", "last_used_at", "expires_at"]
    show_change_link = True


@admin.register(Client)
class ClientAdmin(ClientScopedAdmin):
    client_path = "pk"
    form = ClientAdminForm
    list_display = ["client_id", "name", "is_active", "time_zone", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["client_id", "name"]
    filter_horizontal = ["staff"]
    inlines = [SecretKeyInline]
    actions = ["generate_secret_key"]

    def get_fields(self, request, obj=None):
        fields = [
            "client_id",
            "name",
            "is_active",
            "time_zone",
            "callback_url",
            "quiet_hours_start",
            "quiet_hours_end",
        ]
        if is_operator(request.user):
            fields += [
                "api_rate_per_minute",
                "retention_days",
                "staff",
                "batch_encryption",
                "batch_signature_required",
                "batch_password_status",
                "new_batch_password",
            ]
        return fields

    def get_readonly_fields(self, request, obj=None):
        if is_operator(request.user):
            # Chosen with set_batch_encryption, which checks the keys the choice needs.
            return ["batch_encryption", "batch_signature_required", "batch_password_status"]
        return super().get_readonly_fields(request, obj)

    @admin.display(description="Batch password")
    def batch_password_status(self, obj):
        return "set" if obj and obj.has_batch_password else "not set"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        new_password = form.cleaned_data.get("new_batch_password")
        if new_password:
            client_set_batch_password(client=obj, password=new_password)

    def has_issue_key_permission(self, request):
        return request.user.has_perm("clients.add_secretkey")

    @admin.action(description="Generate a new secret key (shown once)", permissions=["issue_key"])
    def generate_secret_key(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one client.", messages.ERROR)
            return None
        try:
            key, secret = secret_key_create(client=queryset.get())
        except SecretKeyError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "New secret key",
            "key": key,
            "secret": secret,
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "admin/clients/secret_key_issued.html", context)
        # The secret is on this page only: no cache may keep it.
        response["Cache-Control"] = "no-store"
        return response


@admin.register(SecretKey)
class SecretKeyAdmin(admin.ModelAdmin):
    list_display = ["fingerprint", "client", "slot", "is_active", "created_at", "last_used_at"]
    list_filter = ["is_active", "client"]
    list_select_related = ["client"]
    search_fields = ["fingerprint", "client__client_id"]
    fields = [
        "client",
        "fingerprint",
        "slot",
        "is_active",
        "created_at",
        "last_used_at",
        "expires_at",
        "deactivated_at",
    ]
    readonly_fields = [
        "client",
        "fingerprint",
        "slot",
        "is_active",
        "created_at",
        "last_used_at",
        "deactivated_at",
    ]
    actions = ["deactivate"]

    def has_add_permission(self, request):
        # Keys are issued from the client list ("Generate a new secret key").
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Deactivate selected keys", permissions=["change"])
    def deactivate(self, request, queryset):
        count = sum(secret_key_deactivate(key=key) for key in queryset)
        self.message_user(request, f"Deactivated {count} key(s).")


class FieldInline(admin.TabularInline):
    model = Field
    formset = FieldSchemaFormSet
    fields = ["name", "type", "required", "max_length", "date_format"]
    extra = 0


class ApplicationMediumInline(admin.TabularInline):
    model = ApplicationMedium
    fields = ["medium", "recipient_field"]
    extra = 0

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "recipient_field":
            # Only this application's own (saved) fields can hold the recipient.
            object_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = (
                Field.objects.filter(application_id=object_id)
                if object_id and object_id.isdigit()
                else Field.objects.none()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Application)
class ApplicationAdmin(ClientScopedAdmin):
    form = ApplicationAdminForm
    list_display = ["code", "client", "name", "brand_name", "is_active"]
    list_filter = [ClientFilter, "is_active"]
    list_select_related = ["client"]
    search_fields = ["code", "name", "client__client_id"]
    fields = ApplicationAdminForm.Meta.fields
    inlines = [FieldInline, ApplicationMediumInline]

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        own_clients = list(visible_clients(request.user)[:2])
        if len(own_clients) == 1:
            initial.setdefault("client", own_clients[0].pk)
        return initial
