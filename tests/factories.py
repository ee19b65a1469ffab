"""factory-boy factories for the platform's models, shared by every test."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from batches.models import Batch
from clients.keys import secret_key_create
from clients.models import Application, ApplicationMedium, Client, Field, FieldType
from clients.roles import CLIENT_STAFF, OPERATORS, SUPPORT
from notifications.intake import notification_create
from notifications.models import Delivery, DeliveryEvent, Notification, Source
from templates_app.models import ContentTemplate
from templates_app.versions import template_save

TEST_PASSWORD = "a-test-password-1234"


def demo_values(**overrides) -> dict[str, str]:
    """Values for the demo schema (ApplicationFactory's fields) as a client sends them.

    `overrides` replace or add values: demo_values(msisdn="", email="a@example.co.id").
    """
    return {
        "customerName": "John Doe",
        "balance": "1230000",
        "dueDate": "09-09-2015",
        "msisdn": "081234567890",
        **overrides,
    }


def demo_params(**overrides) -> dict[str, str]:
    """The same values as an accepted notification stores them: the phone number in E.164."""
    return demo_values(**{"msisdn": "+6281234567890", **overrides})


def accept_notification(
    client: Client,
    reference: str = "R-1",
    *,
    application_code: str = "ABC",
    values: dict[str, str] | None = None,
    **schedule: str,
) -> Notification:
    """Accept a notification through intake, as the API does; `schedule` is send_at or
    expires_at. The values default to demo_values()."""
    return notification_create(
        client=client,
        application_code=application_code,
        reference=reference,
        values=demo_values() if values is None else values,
        **schedule,
    ).notification


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client
        django_get_or_create = ("client_id",)

    client_id = factory.Sequence(lambda n: str(9000 + n))
    name = factory.LazyAttribute(lambda o: f"PT Client {o.client_id}")


class ApplicationFactory(factory.django.DjangoModelFactory):
    """An application with the integration document's fields and SMS + email media."""

    class Meta:
        model = Application
        skip_postgeneration_save = True

    client = factory.SubFactory(ClientFactory)
    code = factory.Sequence(lambda n: f"APP{n}")
    name = "Payment reminder"
    brand_name = "Bank Demo"

    @factory.post_generation
    def with_demo_schema(application, create, extracted, **kwargs):
        if not create or extracted is False:
            return
        fields = {
            "customerName": FieldFactory(
                application=application, name="customerName", max_length=100
            ),
            "balance": FieldFactory(application=application, name="balance", type="integer"),
            "dueDate": FieldFactory(
                application=application, name="dueDate", type="date", date_format="dd-MM-yyyy"
            ),
            "msisdn": FieldFactory(
                application=application, name="msisdn", type="phone", required=False
            ),
            "email": FieldFactory(
                application=application, name="email", type="email", required=False
            ),
        }
        ApplicationMedium.objects.create(
            application=application, medium="sms", recipient_field=fields["msisdn"]
        )
        ApplicationMedium.objects.create(
            application=application, medium="email", recipient_field=fields["email"]
        )


class FieldFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Field

    application = factory.SubFactory(ApplicationFactory, with_demo_schema=False)
    name = factory.Sequence(lambda n: f"field{n}")
    type = FieldType.TEXT
    required = True


class ContentTemplateFactory(factory.django.DjangoModelFactory):
    """A template saved the way the admin saves it: with its first version."""

    class Meta:
        model = ContentTemplate

    application = factory.SubFactory(ApplicationFactory)
    medium = "sms"
    body = "Dear Mr. [customerName], you owe Rp [balance] due on [dueDate]."

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        template = model_class(*args, **kwargs)
        template_save(template=template)
        return template


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Batch

    client = factory.SubFactory(ClientFactory)
    file_name = factory.Sequence(lambda n: f"reminders-{n}.7z")
    inbox_path = factory.LazyAttribute(lambda o: f"{o.client.client_id}/inbox/{o.file_name}")


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    application = factory.SubFactory(ApplicationFactory)
    client = factory.SelfAttribute("application.client")
    reference = factory.Sequence(lambda n: f"REF-{n:06d}")
    params = factory.LazyFunction(demo_params)
    source = Source.API


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    notification = factory.SubFactory(NotificationFactory)
    medium = "sms"
    recipient = "+6281234567890"


class DeliveryEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeliveryEvent

    delivery = factory.SubFactory(DeliveryFactory)
    old_status = ""
    new_status = "PENDING"
    detail = "accepted"


ROLE_GROUPS = {"operator": OPERATORS, "support": SUPPORT, "client_staff": CLIENT_STAFF}


class UserFactory(factory.django.DjangoModelFactory):
    """A staff user: UserFactory(role="client_staff", clients=[client])."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    password = factory.django.Password(TEST_PASSWORD)

    @factory.post_generation
    def role(user, create, extracted, **kwargs):
        if extracted:
            user.groups.add(Group.objects.get(name=ROLE_GROUPS[extracted]))

    @factory.post_generation
    def clients(user, create, extracted, **kwargs):
        for client in extracted or []:
            client.staff.add(user)


def issue_key(client, secret=None):
    """Issue a secret key through the real function; returns (key, secret)."""
    return secret_key_create(client=client, secret=secret)
