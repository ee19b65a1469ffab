"""Delivery receipts: a provider saying a sent message reached the phone, or did not.

A receipt can come before its send is recorded: the provider knows the
message id as soon as it answers, the platform writes it with the group's
outcomes a moment later. Such a receipt is kept (EarlyReceipt) and applied
when the id is recorded. Both sides write first and look second (the receipt
is stored, then the deliveries are searched again; the outcomes are committed,
then the early receipts are searched), so whichever comes last sees the other.
"""

from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from notifications.events import event_record
from notifications.metrics import deliveries_count
from notifications.models import Delivery, DeliveryStatus, EarlyReceipt
from notifications.status import notification_refresh_status

PROVIDER_ID_MAX_LENGTH = Delivery._meta.get_field("provider_message_id").max_length
# A receipt's detail holds the provider's words (an error's title): kept short.
DETAIL_MAX_LENGTH = 500


class ReceiptOutcome(StrEnum):
    """What became of a receipt (the generic gateway is answered with it)."""

    RECORDED = "recorded"
    IGNORED = "ignored"  # a replay, or a receipt for a delivery that is not SENT
    EARLY = "early"  # no delivery has the id yet: kept, and applied when one does
    UNKNOWN = "unknown"  # no id, or one longer than any provider id we store


def receipt_record(
    *, provider: str, provider_message_id: str, delivered: bool, detail: str
) -> ReceiptOutcome:
    """Move the SENT delivery with this provider id to DELIVERED or UNDELIVERED.

    Unknown ids and replays change nothing, so a provider may send a receipt twice.
    """
    if not provider_message_id or len(provider_message_id) > PROVIDER_ID_MAX_LENGTH:
        return ReceiptOutcome.UNKNOWN
    receipt = EarlyReceipt(
        provider=provider,
        provider_message_id=provider_message_id,
        delivered=delivered,
        detail=detail[:DETAIL_MAX_LENGTH],
    )
    outcome = _apply(receipt)
    if outcome is not None:
        return outcome
    _keep(receipt)
    # The send may have been recorded since the first look: look again.
    outcome = _apply(receipt)
    if outcome is None:
        return ReceiptOutcome.EARLY
    _forget([receipt])
    return outcome


def early_receipts_apply(*, sent: list[tuple[str, str]]) -> int:
    """Apply the receipts that came before these (provider, provider id) pairs were
    recorded; call it after their outcomes are committed. Returns how many applied."""
    wanted = set(sent)
    waiting = [
        receipt
        for receipt in EarlyReceipt.objects.filter(
            provider_message_id__in=[message_id for _, message_id in wanted]
        )
        if (receipt.provider, receipt.provider_message_id) in wanted
    ]
    applied = [receipt for receipt in waiting if _apply(receipt) is not None]
    _forget(applied)
    return len(applied)


def early_receipts_apply_recorded() -> int:
    """Apply every kept receipt whose id a delivery holds by now; returns how many applied.

    Run by the dispatch sweep: a worker that died between recording a group and
    applying its early receipts leaves them for this.
    """
    recorded = Delivery.objects.filter(
        provider=OuterRef("provider"), provider_message_id=OuterRef("provider_message_id")
    )
    waiting = list(EarlyReceipt.objects.filter(Exists(recorded))[:1000])
    return early_receipts_apply(
        sent=[(receipt.provider, receipt.provider_message_id) for receipt in waiting]
    )


@transaction.atomic
def _apply(receipt: EarlyReceipt) -> ReceiptOutcome | None:
    """Apply `receipt` to its delivery: RECORDED or IGNORED; None if no delivery has its id."""
    # exclude(""): the index on provider ids leaves out the empty ones (unsent deliveries).
    delivery = (
        Delivery.objects.filter(
            provider=receipt.provider, provider_message_id=receipt.provider_message_id
        )
        .exclude(provider_message_id="")
        .first()
    )
    if delivery is None:
        return None
    new_status = DeliveryStatus.DELIVERED if receipt.delivered else DeliveryStatus.UNDELIVERED
    now = timezone.now()
    updated = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENT).update(
        status=new_status, delivered_at=now if receipt.delivered else None, updated_at=now
    )
    if not updated:
        return ReceiptOutcome.IGNORED
    deliveries_count([(delivery.medium, delivery.provider, new_status)])
    event_record(
        delivery_id=delivery.pk,
        old_status=DeliveryStatus.SENT,
        new_status=new_status,
        detail=receipt.detail,
    )
    notification_refresh_status(notification_id=delivery.notification_id)
    return ReceiptOutcome.RECORDED


def _keep(receipt: EarlyReceipt) -> None:
    """Store an early receipt (a replay of one is dropped), and drop those kept too long."""
    EarlyReceipt.objects.bulk_create([receipt], ignore_conflicts=True)
    too_old = timezone.now() - timedelta(hours=settings.RECEIPT_WAIT_HOURS)
    EarlyReceipt.objects.filter(received_at__lt=too_old).delete()


def _forget(receipts: list[EarlyReceipt]) -> None:
    for receipt in receipts:
        EarlyReceipt.objects.filter(
            provider=receipt.provider, provider_message_id=receipt.provider_message_id
        ).delete()
