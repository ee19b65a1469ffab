"""A template has the parts its medium declares (Medium.template_parts), and no other."""

import pytest
from django.core.exceptions import ValidationError

from clients.media import MEDIA, Medium
from clients.models import ApplicationMedium
from tests.factories import ContentTemplateFactory


def refusal(template) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        template.clean()
    return raised.value.messages


def test_an_sms_template_with_a_subject_is_refused_naming_the_email_parts(app_8002):
    template = ContentTemplateFactory.build(application=app_8002, medium="sms", subject="Hi")

    assert refusal(template) == ["Only email templates have a subject and an HTML body."]


def test_an_email_template_with_a_provider_template_name_is_refused(app_8002):
    template = ContentTemplateFactory.build(
        application=app_8002, medium="email", subject="Hi", provider_template_name="reminder_v2"
    )

    assert refusal(template) == ["Only WhatsApp templates have a provider template name."]


def test_each_medium_may_fill_the_parts_it_declares(app_8002):
    ApplicationMedium.objects.create(
        application=app_8002,
        medium="whatsapp",
        recipient_field=app_8002.fields.get(name="msisdn"),
    )

    ContentTemplateFactory.build(
        application=app_8002, medium="email", subject="Hi", html_body="<p>Hi</p>"
    ).clean()
    ContentTemplateFactory.build(
        application=app_8002, medium="whatsapp", provider_template_name="reminder_v2"
    ).clean()


def test_a_new_medium_that_declares_a_part_is_named_among_those_having_it(app_8002, monkeypatch):
    class RCS(Medium):
        code = "rcs"
        label = "RCS"
        recipient_field_types = ("phone",)
        template_parts = ("body", "provider_template_name")

    monkeypatch.setitem(MEDIA, RCS.code, RCS)
    template = ContentTemplateFactory.build(
        application=app_8002, medium="sms", provider_template_name="reminder_v2"
    )

    assert refusal(template) == ["Only WhatsApp or RCS templates have a provider template name."]
