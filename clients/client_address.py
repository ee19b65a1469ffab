"""The address a request comes from: what django-axes counts sign-ins by, and what the
records of access to personal data keep (notifications/access_records.py)."""

import ipaddress

from django.conf import settings


def client_address(request) -> str | None:
    """REMOTE_ADDR, or behind a trusted proxy the address that proxy saw.

    The proxy appends the address it was reached from to X-Forwarded-For, so only
    the right-most entry is its word: entries to the left come from the client and
    could name any address. Without BEHIND_TRUSTED_PROXY the header is ignored,
    since anyone could send it to spread their attempts over invented addresses.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    if not settings.BEHIND_TRUSTED_PROXY:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(forwarded))
    except ValueError:
        return remote
