"""Support's search box: what the term is, and the notifications or deliveries it finds.

A term is always tried as a clientNotifRefId (exact), and also as a recipient when it
reads as one: a phone number in any common writing (0812-3456-7890, 62812…, +62 812…),
normalised to E.164 as intake stores it, or an email address, case-insensitively. Each
is answered from its own index: the reference with one probe a visible client of
`unique_reference_per_client`, the recipient from `delivery_recipient_idx` on
lower(recipient), and a purged delivery (whose recipient is gone) from its keyed digest
(notifications/recipient_digest.py, `delivery_recipient_digest_idx`). Never one query
with an OR across the columns, which PostgreSQL could only answer by scanning: the
matches are combined by id here.
"""

import re
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models.functions import Lower

from clients.parameter_validation import phone_number_e164
from notifications.models import Delivery, Notification
from notifications.recipient_digest import purged_deliveries_to

# What a phone number is written with: digits, a leading +, spaces, dashes, dots, brackets.
PHONE_WRITING = re.compile(r"\+?[0-9 ().-]+", re.ASCII)


class TermKind(StrEnum):
    REFERENCE = "reference"
    PHONE = "phone"
    EMAIL = "email"


@dataclass(frozen=True)
class SearchTerm:
    kind: TermKind
    reference: str  # the term as typed (stripped): references are matched exactly
    recipient: str  # the recipient it stands for, lower-cased; "" for a reference only


def search_term_read(text: str) -> SearchTerm:
    """What support typed: a reference, and perhaps a phone number or an email address."""
    term = text.strip()
    if "@" in term:
        try:
            validate_email(term)
        except ValidationError:
            pass
        else:
            return SearchTerm(TermKind.EMAIL, term, term.lower())
    if PHONE_WRITING.fullmatch(term) and (e164 := phone_number_e164(term)):
        return SearchTerm(TermKind.PHONE, term, e164.lower())
    return SearchTerm(TermKind.REFERENCE, term, "")


def notification_ids_found(term: SearchTerm, client_ids: list[int]) -> list[int]:
    """Ids of the notifications of `client_ids` the term finds, newest first, at most
    SUPPORT_SEARCH_MAX_MATCHES."""
    by_reference = Notification.objects.filter(client_id__in=client_ids, reference=term.reference)
    found = set(by_reference.values_list("pk", flat=True))
    if term.recipient:
        found.update(delivery.notification_id for delivery in _to_recipient(term, client_ids))
    return sorted(found, reverse=True)[: settings.SUPPORT_SEARCH_MAX_MATCHES]


def delivery_ids_found(term: SearchTerm, client_ids: list[int]) -> list[int]:
    """Ids of the deliveries of `client_ids` the term finds, at most
    SUPPORT_SEARCH_MAX_MATCHES."""
    by_reference = Delivery.objects.filter(
        notification__client_id__in=client_ids, notification__reference=term.reference
    )
    found = set(by_reference.values_list("pk", flat=True))
    if term.recipient:
        found.update(delivery.pk for delivery in _to_recipient(term, client_ids))
    return sorted(found, reverse=True)[: settings.SUPPORT_SEARCH_MAX_MATCHES]


def _to_recipient(term: SearchTerm, client_ids: list[int]) -> list[Delivery]:
    """The deliveries to the term's recipient: those still holding it, and those purged."""
    limit = settings.SUPPORT_SEARCH_MAX_MATCHES
    live = Delivery.objects.alias(recipient_lower=Lower("recipient")).filter(
        recipient_lower=term.recipient
    )
    purged = purged_deliveries_to(term.recipient)
    return [
        delivery
        for matches in (live, purged)
        for delivery in matches.filter(notification__client_id__in=client_ids)
        .only("pk", "notification_id")
        .order_by("-pk")[:limit]
    ]
