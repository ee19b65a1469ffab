from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Exists, OuterRef
from django_otp.plugins.otp_totp.models import TOTPDevice

from clients.roles import is_operator
from kokatto_site.sign_in.two_factor import reset_second_factor

User = get_user_model()


class SignInUserAdmin(UserAdmin):
    """Django's user admin, plus whether each user has enrolled a second factor and an
    operators' action to reset it."""

    list_display = [*UserAdmin.list_display, "two_factor_enrolled"]
    actions = ["reset_second_factor"]

    def get_queryset(self, request):
        enrolled = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).annotate(two_factor_enrolled=Exists(enrolled))

    @admin.display(boolean=True, description="Two-factor enrolled")
    def two_factor_enrolled(self, user):
        return user.two_factor_enrolled

    def has_reset_second_factor_permission(self, request):
        return is_operator(request.user)

    @admin.action(
        permissions=["reset_second_factor"],
        description="Reset the second factor of the selected users (they enrol again)",
    )
    def reset_second_factor(self, request, queryset):
        for user in queryset:
            reset_second_factor(user, by=request.user)
        self.message_user(
            request,
            f"Reset the second factor of {len(queryset)} user(s): each enrols a new "
            "authenticator app at their next sign-in.",
            messages.SUCCESS,
        )


admin.site.unregister(User)
admin.site.register(User, SignInUserAdmin)
