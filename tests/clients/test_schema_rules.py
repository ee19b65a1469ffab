"""Single-row rules of applications' field schemas, media and templates."""

import pytest
from django.core.exceptions import ValidationError

from clients.models import ApplicationMedium, Client
from clients.parameter_validation import PlatformParameter
from tests.factories import ApplicationFactory, ContentTemplateFactory, FieldFactory


def test_a_date_field_needs_a_valid_pattern(db):
    with pytest.raises(ValidationError, match="needs a format"):
        FieldFactory.build(type="date", date_format="").clean()
    with pytest.raises(ValidationError, match="'Q'"):
        FieldFactory.build(type="date", date_format="dd-QQ-yyyy").clean()
    FieldFactory.build(type="date", date_format="dd-MM-yyyy").clean()


def test_a_field_cannot_take_a_platform_parameter_name(db):
    with pytest.raises(ValidationError, match="platform parameter"):
        FieldFactory.build(name="clientNotifRefId").clean()


@pytest.mark.parametrize("name", list(PlatformParameter))
def test_no_platform_parameter_of_a_request_or_a_batch_line_can_be_a_field(db, name):
    with pytest.raises(ValidationError, match="platform parameter"):
        FieldFactory.build(name=name).clean()


def test_a_field_may_not_allow_longer_values_than_any_parameter_may_hold(db, settings):
    settings.API_MAX_PARAMETER_CHARS = 4096

    with pytest.raises(ValidationError, match="At most 4096 characters"):
        FieldFactory.build(max_length=5000).clean()
    FieldFactory.build(max_length=4096).clean()


def test_sms_needs_a_phone_field_as_recipient(app_8002):
    name_field = app_8002.fields.get(name="customerName")
    medium = ApplicationMedium(application=app_8002, medium="whatsapp", recipient_field=name_field)

    with pytest.raises(ValidationError, match="phone"):
        medium.clean()


def test_the_recipient_field_must_belong_to_the_same_application(app_8002, app_8003):
    foreign_field = app_8003.fields.get(name="msisdn")
    medium = ApplicationMedium(
        application=app_8002, medium="whatsapp", recipient_field=foreign_field
    )

    with pytest.raises(ValidationError, match="belong to this application"):
        medium.clean()


def test_a_template_needs_its_medium_enabled_on_the_application(db):
    application = ApplicationFactory(with_demo_schema=False)

    with pytest.raises(ValidationError, match="does not send SMS"):
        ContentTemplateFactory.build(application=application, medium="sms").clean()


def test_only_email_templates_have_a_subject(app_8002):
    template = ContentTemplateFactory.build(application=app_8002, medium="sms", subject="Hi")

    with pytest.raises(ValidationError, match="Only email"):
        template.clean()


def test_a_client_time_zone_must_exist(db):
    client = Client(client_id="8009", name="PT X", time_zone="Asia/Atlantis")

    with pytest.raises(ValidationError) as raised:
        client.full_clean()
    assert "time_zone" in raised.value.message_dict


def test_the_batch_password_is_stored_encrypted(client_8002):
    client_8002.set_batch_password("s3cret-archive-pass")
    client_8002.save()

    stored = Client.objects.values_list("batch_password_encrypted", flat=True).get(
        pk=client_8002.pk
    )
    assert "s3cret-archive-pass" not in stored
    assert Client.objects.get(pk=client_8002.pk).batch_password() == "s3cret-archive-pass"
