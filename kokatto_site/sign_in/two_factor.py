"""Two-factor sign-in to the control panel: an authenticator app (TOTP) and backup codes.

Built on django-otp. A user enrols on their first sign-in by scanning a QR code (or typing
the secret) into an authenticator app and confirming one code; they then get backup codes,
shown once. Each code is accepted once: a TOTP device remembers the last time step it
accepted (`last_t`) and a backup code is deleted when used; wrong codes slow the device
down (django-otp's throttling). Verification locks the device row, so two requests with
the same code cannot both pass.
"""

from base64 import b32encode

import segno
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import transaction
from django.utils.safestring import mark_safe
from django_otp import devices_for_user, verify_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

AUTHENTICATOR_NAME = "Authenticator app"
BACKUP_CODES_NAME = "Backup codes"
BACKUP_CODE_COUNT = 10


def authenticator_of(user) -> TOTPDevice | None:
    """The user's confirmed authenticator app, if they have enrolled one."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def pending_authenticator(user) -> TOTPDevice:
    """The authenticator being enrolled: the same secret until it is confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)


def normalised_code(code: str) -> str:
    """A code as typed, without spaces and case (backup codes are lower-case base32)."""
    return "".join(code.split()).lower()


def confirm_authenticator(device: TOTPDevice, code: str) -> bool:
    """Confirm an enrolment with a code from the app; False for a wrong or used code."""
    if verify_token(device.user, device.persistent_id, normalised_code(code)) is None:
        return False
    TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
    # A second tab may have started another enrolment: its secret is never to be used.
    TOTPDevice.objects.filter(user=device.user, confirmed=False).delete()
    device.refresh_from_db()
    return True


@transaction.atomic
def issue_backup_codes(user) -> list[str]:
    """New backup codes for the user, replacing any earlier ones; shown to them once."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=BACKUP_CODES_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def verify_second_factor(user, code: str):
    """The confirmed device (app or backup codes) that accepts this code, or None."""
    code = normalised_code(code)
    for device in devices_for_user(user):
        verified = verify_token(user, device.persistent_id, code)
        if verified is not None:
            return verified
    return None


@transaction.atomic
def reset_second_factor(user, *, by) -> int:
    """Remove the user's devices so they enrol again at their next sign-in; audit-logged.

    Returns how many devices were removed. A session they verified with a removed device
    is no longer verified (django-otp's middleware finds no device).
    """
    removed = 0
    for model in (TOTPDevice, StaticDevice):
        removed += model.objects.filter(user=user).delete()[1].get(model._meta.label, 0)
    LogEntry.objects.log_actions(
        user_id=by.pk,
        queryset=[user],
        action_flag=CHANGE,
        change_message=f"Reset the second factor ({removed} device(s) removed): "
        "enrols again at the next sign-in.",
        single_object=True,
    )
    return removed


def secret_text(device: TOTPDevice) -> str:
    """The secret in base32, in groups of four, for typing into an app by hand."""
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_code_svg(device: TOTPDevice) -> str:
    """The enrolment QR code (the otpauth:// URI) as an inline <svg> element.

    Inline markup without script or style attributes: it shows under a strict
    Content-Security-Policy, and the secret never leaves the page in an image URL.
    """
    svg = segno.make(device.config_url, error="m").svg_inline(
        light="#fff", scale=4, title="QR code for your authenticator app"
    )
    return mark_safe(svg)  # noqa: S308 - segno's own markup; the URI is encoded in its modules
