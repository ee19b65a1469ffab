"""The second step of signing in to the control panel: enrol an authenticator, or give a code."""

import django_otp
from django.conf import settings
from django.contrib import admin
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from kokatto_site.sign_in.forms import CodeForm
from kokatto_site.sign_in.two_factor import (
    BACKUP_CODE_COUNT,
    authenticator_of,
    confirm_authenticator,
    issue_backup_codes,
    pending_authenticator,
    qr_code_svg,
    secret_text,
    verify_second_factor,
)

WRONG_CODE = (
    "That code is wrong or was already used. Enter the current code "
    "(after several wrong codes, wait a few seconds before the next try)."
)


def _next_url(request) -> str:
    wanted = request.POST.get("next") or request.GET.get("next", "")
    if url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return reverse("admin:index")


def _page(request, template, **context):
    context = {
        **admin.site.each_context(request),
        "is_nav_sidebar_enabled": False,
        "next": _next_url(request),
        **context,
    }
    return render(request, template, context)


@admin.site.admin_view
def enrol(request):
    """First sign-in: scan the QR code (or type the secret), confirm with a code."""
    if authenticator_of(request.user):
        return redirect(_next_url(request))
    device = pending_authenticator(request.user)
    form = CodeForm(request.POST or None)
    if form.is_valid():
        if confirm_authenticator(device, form.cleaned_data["code"]):
            django_otp.login(request, device)
            codes = issue_backup_codes(request.user)
            return _page(request, "sign_in/backup_codes.html", codes=codes)
        form.add_error("code", WRONG_CODE)
    return _page(
        request,
        "sign_in/enrol.html",
        form=form,
        qr_code=qr_code_svg(device),
        secret=secret_text(device),
        issuer=settings.OTP_TOTP_ISSUER,
        backup_code_count=BACKUP_CODE_COUNT,
    )


@admin.site.admin_view
def verify(request):
    """Later sign-ins: a code from the authenticator app, or one of the backup codes."""
    if not authenticator_of(request.user):
        return redirect(f"{reverse('two_factor:enrol')}?{request.GET.urlencode()}")
    form = CodeForm(request.POST or None)
    if form.is_valid():
        device = verify_second_factor(request.user, form.cleaned_data["code"])
        if device is not None:
            django_otp.login(request, device)
            return redirect(_next_url(request))
        form.add_error("code", WRONG_CODE)
    return _page(request, "sign_in/verify.html", form=form)
