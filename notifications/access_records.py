"""Who read customers' personal data in the admin: every notification or delivery page
viewed and every CSV export, by anyone (operators too), with when and from where.

UU PDP asks that access to personal data be accountable. Recording every reader is
simpler than deciding whose reading counts, and stricter: an operator's reading is
recorded as well. Operators list the records in the admin; nobody edits them.
"""

from django.http import HttpRequest

from clients.client_address import client_address
from notifications.models import AccessKind, Notification, PersonalDataAccess

PAGE_MAX = PersonalDataAccess._meta.get_field("page").max_length


def access_record_view(*, request: HttpRequest, notification: Notification) -> PersonalDataAccess:
    """Record that the request's user read `notification`'s page (or one of its deliveries')."""
    return PersonalDataAccess.objects.create(
        kind=AccessKind.VIEW,
        client_id=notification.client_id,
        notification=notification,
        reference=notification.reference,
        **_reader(request),
    )


def access_record_export(*, request: HttpRequest) -> PersonalDataAccess:
    """Record an export as it starts, with its filters; `access_record_export_done` adds the
    row count when the last row is written (a cut-off download keeps the record, count empty).
    """
    return PersonalDataAccess.objects.create(
        kind=AccessKind.EXPORT, filters=request.META.get("QUERY_STRING", ""), **_reader(request)
    )


def access_record_search(*, request: HttpRequest) -> PersonalDataAccess:
    """Record a search of a notification or delivery list: the term (a phone number, say)
    and the recipients the list then shows are personal data read."""
    return PersonalDataAccess.objects.create(
        kind=AccessKind.SEARCH, filters=request.META.get("QUERY_STRING", ""), **_reader(request)
    )


def access_record_export_done(*, record: PersonalDataAccess, rows: int) -> None:
    PersonalDataAccess.objects.filter(pk=record.pk).update(row_count=rows)


def _reader(request: HttpRequest) -> dict:
    return {
        "user": request.user,
        "username": request.user.get_username(),
        "address": client_address(request),
        "page": request.path[:PAGE_MAX],
    }
