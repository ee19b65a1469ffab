"""Demo traffic for `make run`: notifications sent through the real pipeline, one batch file.

So that a newcomer's first look at the control panel and its dashboard is not empty.
Everything goes the way a client's request would: `notification_create` (the API's
intake), `dispatch_due` (the workers' sending, here called synchronously, with the
console backends of `make run`), `receipt_record` (a provider's receipt),
`notification_cancel`, and a 7-Zip file ingested by `batch_ingest`. What the console
backends print is kept out of seed_demo's output.

Idempotent: it runs once, when client 8002 has no demo notification yet.
"""

import contextlib
import io
import time
from dataclasses import dataclass
from datetime import timedelta

import py7zr
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from batches.file_storage import batch_storage, home_path
from batches.inbox import batch_receive
from batches.ingest import batch_ingest
from batches.models import Batch
from clients.models import Client
from notifications.dispatch import dispatch_due
from notifications.intake import notification_cancel, notification_create
from notifications.models import Delivery, DeliveryStatus, Notification
from notifications.receipts import receipt_record

DEMO_REFERENCE_PREFIX = "DEMO-"
DEMO_BATCH_FILE = "demo-reminders.7z"

# (name, balance, due date, who to reach: "sms", "email" or "both")
CUSTOMERS = [
    ("Budi Santoso", "1250000", "15-12-2026", "both"),
    ("Siti Rahayu", "480000", "20-12-2026", "sms"),
    ("Agus Wijaya", "3200000", "05-01-2027", "email"),
    ("Dewi Lestari", "75000", "18-12-2026", "both"),
    ("Rudi Hartono", "920000", "22-12-2026", "sms"),
    ("Rina Kusuma", "15400000", "30-12-2026", "both"),
    ("Hendra Gunawan", "610000", "10-01-2027", "email"),
    ("Wulan Sari", "2890000", "12-12-2026", "sms"),
    ("Fajar Nugroho", "134000", "28-12-2026", "both"),
    ("Maya Putri", "5600000", "03-01-2027", "sms"),
    ("Yusuf Hidayat", "705000", "14-12-2026", "email"),
    ("Indah Permata", "2100000", "21-12-2026", "both"),
    ("Bayu Pratama", "390000", "08-01-2027", "sms"),
    ("Putri Anggraini", "8800000", "17-12-2026", "both"),
]


@dataclass
class DemoActivity:
    notifications: int = 0
    batch: Batch | None = None
    already_there: bool = False


def demo_activity_seed() -> DemoActivity:
    """Send the demo notifications and ingest the demo batch, unless done before."""
    bank = Client.objects.get(client_id="8002")
    lender = Client.objects.get(client_id="8003")
    if Notification.objects.filter(client=bank, reference__startswith=DEMO_REFERENCE_PREFIX):
        return DemoActivity(already_there=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the console backends' printing
        created = _api_traffic(bank, "ABC") + _api_traffic(lender, "XYZ")
        scheduled = _scheduled(bank, "ABC", count=4)
        expiring = _expiring_soon(lender, "XYZ")
        batch = _demo_batch(bank)
        _send_all_due(until=expiring.expires_at)
        _receipts(created)
        with transaction.atomic():
            notification_cancel(notification=scheduled[0])
    return DemoActivity(notifications=Notification.objects.count(), batch=batch)


def _values(index: int, customer: tuple, *, client: Client) -> dict[str, str]:
    name, balance, due, reach = customer
    values = {"customerName": name, "balance": balance, "dueDate": due}
    if reach in ("sms", "both"):
        values["msisdn"] = f"+62812{client.client_id}{index:04d}"
    if reach in ("email", "both"):
        values["email"] = f"{name.split()[0].lower()}.{index}@example.co.id"
    if client.client_id == "8003" and index % 2:  # 8003's application has WhatsApp too
        values["whatsapp"] = f"+62813{client.client_id}{index:04d}"
    return values


def _api_traffic(client: Client, code: str) -> list[Notification]:
    customers = CUSTOMERS if client.client_id == "8002" else CUSTOMERS[::2]
    return [
        notification_create(
            client=client,
            application_code=code,
            reference=f"{DEMO_REFERENCE_PREFIX}{client.client_id}-{index:03d}",
            values=_values(index, customer, client=client),
        ).notification
        for index, customer in enumerate(customers, start=1)
    ]


def _scheduled(client: Client, code: str, *, count: int) -> list[Notification]:
    """Accepted now, sent tomorrow morning (sendAt): they wait in the queue."""
    send_at = (timezone.localtime() + timedelta(days=1)).replace(hour=9, minute=0, second=0)
    return [
        notification_create(
            client=client,
            application_code=code,
            reference=f"{DEMO_REFERENCE_PREFIX}{client.client_id}-LATER-{index}",
            values=_values(100 + index, CUSTOMERS[index], client=client),
            send_at=send_at.isoformat(),
        ).notification
        for index in range(count)
    ]


def _expiring_soon(client: Client, code: str) -> Notification:
    """One whose expiresAt passes before the dispatcher gets to it: it ends EXPIRED."""
    return notification_create(
        client=client,
        application_code=code,
        reference=f"{DEMO_REFERENCE_PREFIX}{client.client_id}-EXPIRING",
        values=_values(200, CUSTOMERS[1], client=client),
        expires_at=(timezone.now() + timedelta(seconds=0.5)).isoformat(),
    ).notification


def _demo_batch(client: Client) -> Batch:
    """A 7z file as the client would upload it: a dozen lines, three of them bad."""
    lines = [
        _batch_line(f"{DEMO_REFERENCE_PREFIX}BATCH-{index:03d}", customer, index)
        for index, customer in enumerate(CUSTOMERS[:10], start=1)
    ]
    lines.append(
        _batch_line(f"{DEMO_REFERENCE_PREFIX}BATCH-BAD-DATE", CUSTOMERS[0], 11, due="31-02-2026")
    )
    lines.append(
        _batch_line(f"{DEMO_REFERENCE_PREFIX}BATCH-NO-AMOUNT", CUSTOMERS[1], 12, balance="")
    )
    lines.append(_batch_line(f"{DEMO_REFERENCE_PREFIX}BATCH-001", CUSTOMERS[2], 13))  # reused
    archive = io.BytesIO()
    with py7zr.SevenZipFile(
        archive, "w", password=client.batch_password(), header_encryption=True
    ) as seven_zip:
        seven_zip.writestr(("\n".join(lines) + "\n").encode(), "reminders.csv")
    storage = batch_storage()
    storage.save(home_path(client, "inbox", DEMO_BATCH_FILE), ContentFile(archive.getvalue()))
    batch = batch_receive(client=client, name=DEMO_BATCH_FILE, queue=False)
    batch_ingest(batch_id=batch.pk)
    batch.refresh_from_db()
    return batch


def _batch_line(reference: str, customer: tuple, index: int, **overrides) -> str:
    name, balance, due, _ = customer
    tokens = {
        "clientId": "8002",
        "appType": "ABC",
        "clientNotifRefId": reference,
        "customerName": name,
        "balance": overrides.get("balance", balance),
        "dueDate": overrides.get("due", due),
        "msisdn": f"0812800{index:05d}",
    }
    return ", ".join(f'"{key}={value}"' for key, value in tokens.items())


def _send_all_due(*, until) -> None:
    """What the workers would do: send every due delivery, after `until` has passed."""
    while timezone.now() <= until:
        time.sleep(0.1)
    while dispatch_due():
        pass


def _receipts(notifications: list[Notification]) -> None:
    """The providers' receipts: most delivered, every seventh not."""
    sent = Delivery.objects.filter(notification__in=notifications, status=DeliveryStatus.SENT)
    for index, delivery in enumerate(sent.order_by("pk")):
        if index % 4 == 3:
            continue  # no receipt yet: stays SENT
        receipt_record(
            provider=delivery.provider,
            provider_message_id=delivery.provider_message_id,
            delivered=index % 7 != 6,
            detail="demo receipt",
        )
