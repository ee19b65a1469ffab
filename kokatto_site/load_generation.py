"""Fill PostgreSQL with realistic notifications, deliveries and status events, fast.

For the support benchmark (bench/support_search.py) and for trying the admin at scale:
`python manage.py generate_load --notifications 10000000`. Clients, applications, templates
and batches are created through the ORM (a few thousand rows); notifications, deliveries
and events are streamed with COPY, in time order, with the three tables' secondary
indexes and foreign keys dropped during the load and built again after it (building an
index once is several times cheaper than keeping it up to date row by row), then ANALYZE.
Everything happens in one transaction: the tables are locked while it runs.
"""

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from batches.models import Batch
from clients.models import Application, ApplicationMedium, Client, Field, FieldType
from templates_app.models import ContentTemplate
from templates_app.versions import template_save

TABLES = ["notifications_notification", "notifications_delivery", "notifications_deliveryevent"]
DAYS = 182  # about six months of history
BATCH_SHARE = 0.7  # most notifications arrive in nightly batch files
EMAIL_SHARE = 0.4  # notifications with an email delivery besides the SMS
NOTIFICATIONS_A_CUSTOMER = 5  # over the six months
CHUNK = 50_000
# The load clients' sizes: one large bank, then smaller lenders and billers.
CLIENT_WEIGHTS = [0.4, 0.2, 0.15, 0.1, 0.1, 0.05]
NAMES = ["Budi Santoso", "Siti Rahayu", "Agus Wijaya", "Dewi Lestari", "Rina Hartono", "Andi Putra"]
EMAIL_DOMAINS = ["gmail.com", "yahoo.co.id", "Example.co.id", "mail.com"]
MOBILE_PREFIXES = ["812", "813", "821", "852", "857", "878", "896"]
# (delivery status, share, the statuses it went through after PENDING)
OUTCOMES = [
    ("DELIVERED", 0.78, ["SENT", "DELIVERED"]),
    ("SENT", 0.08, ["SENT"]),
    ("FAILED", 0.05, ["FAILED"]),
    ("UNDELIVERED", 0.02, ["SENT", "UNDELIVERED"]),
    ("EXPIRED", 0.02, ["EXPIRED"]),
    ("CANCELLED", 0.02, ["CANCELLED"]),
    ("PENDING", 0.03, []),
]
NOTIFICATION_STATUS = {
    "DELIVERED": "DELIVERED",
    "SENT": "SENT",
    "FAILED": "FAILED",
    "UNDELIVERED": "FAILED",
    "EXPIRED": "FAILED",
    "CANCELLED": "CANCELLED",
    "PENDING": "ACCEPTED",
}
TEMPLATE_BODY = "Yth. [customerName], tagihan Anda Rp [balance] jatuh tempo [dueDate]."
PROVIDERS = {"sms": "sms-gateway", "email": "smtp"}
SMS_TEXT = "Yth. {name}, tagihan Anda Rp {balance} jatuh tempo {due}. Abaikan jika sudah membayar."


@dataclass(frozen=True)
class LoadApplication:
    client_pk: int
    application_pk: int
    versions: dict[str, int]  # medium -> template version id


@dataclass
class LoadResult:
    notifications: int = 0
    deliveries: int = 0
    events: int = 0
    batches: int = 0


def load_generate(*, notifications: int, seed: int = 18, log=print) -> LoadResult:
    """Add `notifications` notifications to the load clients (PostgreSQL only)."""
    rng = random.Random(seed)  # noqa: S311 (made-up data, reproducible)
    applications = _applications()
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=DAYS)
    result = LoadResult(notifications=notifications)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        # Check now the deferred foreign keys of rows written in this transaction (in a
        # test, the templates above): a table with pending checks cannot be altered.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM notifications_notification),"
            " (SELECT coalesce(max(id), 0) FROM notifications_delivery)"
        )
        next_notification, next_delivery = (value + 1 for value in cursor.fetchone())
        batches = _batches(applications, start)
        result.batches = len(batches)
        log(f"{len(applications)} applications, {len(batches)} batches; streaming rows")
        definitions = _secondary_indexes(cursor)
        for drop, _ in definitions:
            cursor.execute(drop)
        rows = _Rows(applications, batches, start, notifications, rng)
        copier = cursor.connection.cursor()
        for first in range(0, notifications, CHUNK):
            chunk = rows.chunk(
                first, min(CHUNK, notifications - first), next_notification, next_delivery
            )
            next_notification += CHUNK
            next_delivery += len(chunk.deliveries)
            _copy(copier, NOTIFICATION_COPY, chunk.notifications)
            _copy(copier, DELIVERY_COPY, chunk.deliveries)
            _copy(copier, EVENT_COPY, chunk.events)
            result.deliveries += len(chunk.deliveries)
            result.events += len(chunk.events)
            if (first // CHUNK) % 20 == 19:
                log(f"  {first + CHUNK:,} notifications")
        log("building indexes and foreign keys")
        for _, create in definitions:
            cursor.execute(create)
        for table in TABLES[:2]:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608 (ours)
                f" (SELECT max(id) FROM {table}))"
            )
    with connection.cursor() as cursor:
        log("ANALYZE")
        for table in TABLES:
            cursor.execute(f"ANALYZE {table}")
    return result


NOTIFICATION_COPY = (
    "COPY notifications_notification (id, client_id, application_id, reference, params,"
    " source, batch_id, batch_line, status, created_at, updated_at) FROM STDIN"
)
DELIVERY_COPY = (
    "COPY notifications_delivery (id, notification_id, medium, recipient, subject, body,"
    " html_body, template_version_id, status, attempts, claims, next_attempt_at, provider,"
    " provider_message_id, last_error, created_at, updated_at, sent_at, delivered_at,"
    " recipient_digest)"
    " FROM STDIN"
)
EVENT_COPY = (
    "COPY notifications_deliveryevent (delivery_id, at, old_status, new_status, detail) FROM STDIN"
)


def _copy(cursor, statement: str, lines: list[str]) -> None:
    with cursor.copy(statement) as copy:
        copy.write("".join(lines))


@dataclass
class _Chunk:
    notifications: list[str]
    deliveries: list[str]
    events: list[str]


class _Rows:
    """The rows of the load, in COPY's text format, a chunk at a time (in time order)."""

    def __init__(self, applications, batches, start, total, rng):
        self.applications = applications
        self.weights = [
            CLIENT_WEIGHTS[index % len(CLIENT_WEIGHTS)] / 2 for index in range(len(applications))
        ]
        self.batches = batches
        self.start = start
        self.step = DAYS * 86400 / total
        self.customers = max(1, total // NOTIFICATIONS_A_CUSTOMER)
        self.rng = rng
        self.batch_lines: dict[int, int] = {}
        self.outcomes = [outcome for outcome, _, _ in OUTCOMES]
        self.outcome_weights = [share for _, share, _ in OUTCOMES]
        self.paths = {outcome: path for outcome, _, path in OUTCOMES}

    def chunk(self, first: int, size: int, notification_id: int, delivery_id: int) -> _Chunk:
        rng = self.rng
        notifications, deliveries, events = [], [], []
        picks = rng.choices(self.applications, self.weights, k=size)
        outcomes = rng.choices(self.outcomes, self.outcome_weights, k=size)
        for offset in range(size):
            number = first + offset
            application = picks[offset]
            outcome = outcomes[offset]
            created = self.start + timedelta(seconds=number * self.step)
            at = created.isoformat()
            customer = rng.randrange(self.customers)
            name = NAMES[customer % len(NAMES)]
            phone = f"+62{MOBILE_PREFIXES[customer % 7]}{customer % 100_000_000:08d}"
            email = ""
            if rng.random() < EMAIL_SHARE:
                first_name = name.split()[0]
                domain = EMAIL_DOMAINS[customer % len(EMAIL_DOMAINS)]
                email = f"{first_name}.{customer}@{domain}"
            balance = f"{rng.randrange(100, 50_000) * 1000:,}".replace(",", ".")
            due = (created + timedelta(days=7)).strftime("%d-%m-%Y")
            params = {"customerName": name, "balance": balance, "dueDate": due, "msisdn": phone}
            if email:
                params["email"] = email
            if rng.random() < BATCH_SHARE:
                day = int((created - self.start).total_seconds() // 86400)
                batch = self.batches[application.application_pk, day]
                line = self.batch_lines[batch] = self.batch_lines.get(batch, 1) + 1
                source, batch_field, line_field = "batch", str(batch), str(line)
            else:
                source, batch_field, line_field = "api", r"\N", r"\N"
            status = NOTIFICATION_STATUS[outcome]
            notifications.append(
                f"{notification_id + offset}\t{application.client_pk}\t"
                f"{application.application_pk}\tINV-{notification_id + offset:010d}\t"
                f"{json.dumps(params)}\t{source}\t{batch_field}\t{line_field}\t{status}\t"
                f"{at}\t{at}\n"
            )
            text = SMS_TEXT.format(name=name, balance=balance, due=due)
            for medium, recipient in (("sms", phone), ("email", email)):
                if not recipient:
                    continue
                self._delivery(
                    deliveries, events, delivery_id, notification_id + offset, medium,
                    recipient, text, application.versions[medium], outcome, created,
                )  # fmt: skip
                delivery_id += 1
        return _Chunk(notifications, deliveries, events)

    def _delivery(self, deliveries, events, pk, notification, medium, recipient, text, version,
                  outcome, created):  # fmt: skip
        path = self.paths[outcome]
        at = created
        sent = delivered = r"\N"
        previous = "PENDING"
        provider = provider_id = last_error = ""
        if path:
            provider = PROVIDERS[medium]
            provider_id = f"{provider}-{pk:012d}"
        for status in path:
            at = at + timedelta(seconds=self.rng.randrange(1, 600))
            detail = {
                "SENT": f"sent by {provider}, id {provider_id}",
                "DELIVERED": "delivery receipt: DELIVRD",
                "UNDELIVERED": "delivery receipt: UNDELIV",
                "FAILED": "provider refused: 21 invalid destination",
                "EXPIRED": "not sent before expiresAt",
                "CANCELLED": "cancelled by the client",
            }[status]
            if status == "FAILED":
                last_error = detail
            if status == "SENT":
                sent = at.isoformat()
            if status == "DELIVERED":
                delivered = at.isoformat()
            events.append(f"{pk}\t{at.isoformat()}\t{previous}\t{status}\t{detail}\n")
            previous = status
        subject = "Tagihan Anda" if medium == "email" else ""
        attempts = 1 if provider else 0
        deliveries.append(
            f"{pk}\t{notification}\t{medium}\t{recipient}\t{subject}\t{text}\t\t{version}\t"
            f"{outcome}\t{attempts}\t{attempts}\t{created.isoformat()}\t{provider}\t{provider_id}\t"
            f"{last_error}\t{created.isoformat()}\t{at.isoformat()}\t{sent}\t{delivered}\t\n"
        )


def _applications() -> list[LoadApplication]:
    """Six load clients (LOAD01…), two applications each with SMS and email templates."""
    applications = []
    for number in range(1, len(CLIENT_WEIGHTS) + 1):
        client, _ = Client.objects.get_or_create(
            client_id=f"LOAD{number:02d}", defaults={"name": f"PT Beban Uji {number}"}
        )
        for code in ("REMIND", "BILL"):
            application, created = Application.objects.get_or_create(
                client=client, code=code, defaults={"name": code.title(), "brand_name": client.name}
            )
            if created:
                _schema(application)
            versions = {}
            for medium in ("sms", "email"):
                template = ContentTemplate.objects.filter(
                    application=application, medium=medium
                ).first()
                if template is None:
                    template = ContentTemplate(
                        application=application,
                        medium=medium,
                        subject="Tagihan Anda" if medium == "email" else "",
                        body=TEMPLATE_BODY,
                    )
                versions[medium] = template_save(template=template).pk
            applications.append(LoadApplication(client.pk, application.pk, versions))
    return applications


def _schema(application: Application) -> None:
    fields = {
        name: Field.objects.create(application=application, name=name, type=kind, required=required)
        for name, kind, required in [
            ("customerName", FieldType.TEXT, True),
            ("balance", FieldType.TEXT, True),
            ("dueDate", FieldType.TEXT, True),
            ("msisdn", FieldType.PHONE, True),
            ("email", FieldType.EMAIL, False),
        ]
    }
    ApplicationMedium.objects.create(
        application=application, medium="sms", recipient_field=fields["msisdn"]
    )
    ApplicationMedium.objects.create(
        application=application, medium="email", recipient_field=fields["email"]
    )


def _batches(applications: list[LoadApplication], start: datetime) -> dict[tuple[int, int], int]:
    """One finished nightly batch per application and day: {(application pk, day): batch pk}."""
    keys, rows = [], []
    for application in applications:
        for day in range(DAYS + 1):
            moment = start + timedelta(days=day)
            name = f"reminders-{moment:%Y%m%d}-{application.application_pk}.7z"
            keys.append((application.application_pk, day))
            rows.append(
                Batch(
                    client_id=application.client_pk,
                    file_name=name,
                    inbox_path=f"load/inbox/{name}",
                    status="DONE",
                )
            )
    created = Batch.objects.bulk_create(rows)
    Batch.objects.filter(pk__in=[batch.pk for batch in created]).update(created_at=start)
    return {key: batch.pk for key, batch in zip(keys, created, strict=True)}


def _secondary_indexes(cursor) -> list[tuple[str, str]]:
    """(drop, create) statements for the tables' unique and foreign-key constraints and
    their other indexes: everything but the primary keys and check constraints."""
    statements = []
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype"
        " FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f')"
        " ORDER BY contype DESC",
        [TABLES],
    )
    constraints = cursor.fetchall()
    for table, name, definition, _ in constraints:
        statements.append(
            (
                f'ALTER TABLE {table} DROP CONSTRAINT "{name}"',
                f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}',
            )
        )
    cursor.execute(
        "SELECT schemaname, indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))",
        [TABLES],
    )
    for schema, name, definition in cursor.fetchall():
        statements.append((f'DROP INDEX "{schema}"."{name}"', definition))
    # Indexes are built before the foreign keys that may use them are checked.
    return [statements[i] for i in _order(statements)]


def _order(statements) -> list[int]:
    foreign = [i for i, (_, create) in enumerate(statements) if "FOREIGN KEY" in create]
    other = [i for i in range(len(statements)) if i not in foreign]
    return other + foreign
