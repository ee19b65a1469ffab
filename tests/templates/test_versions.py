"""What a customer was sent stays known after the template changes."""

import pytest

from notifications.dispatch import NoTemplate, delivery_render
from templates_app.versions import template_save
from tests.factories import DeliveryFactory, NotificationFactory


def test_an_edit_after_sending_leaves_the_deliverys_text_and_version(sms_template, app_8002):
    delivery = DeliveryFactory(notification=NotificationFactory(application=app_8002), medium="sms")
    delivery_render(delivery=delivery)
    sent_body = delivery.body

    sms_template.body = "Bank Demo: completely new wording for [customerName]"
    template_save(template=sms_template)

    delivery.refresh_from_db()
    assert delivery.body == sent_body
    assert sent_body == "Bank Demo: Dear John Doe, Rp 1.230.000 due 9 September 2015."
    assert delivery.template_version.number == 1
    assert delivery.template_version.body.startswith("Bank Demo: Dear [customerName]")
    assert sms_template.versions.latest().number == 2


def test_email_html_values_are_escaped_and_text_values_are_not(email_template, app_8002):
    notification = NotificationFactory(
        application=app_8002, params={"customerName": "<b>Budi</b> & Sons"}
    )
    delivery = DeliveryFactory(notification=notification, medium="email")

    delivery_render(delivery=delivery)

    assert delivery.subject == "Reminder for <b>Budi</b> & Sons"
    assert delivery.body == "Dear <b>Budi</b> & Sons"
    assert delivery.html_body == "<p>Dear &lt;b&gt;Budi&lt;/b&gt; &amp; Sons</p>"


def test_rendering_without_a_template_says_so(app_8002):
    delivery = DeliveryFactory(notification=NotificationFactory(application=app_8002))

    with pytest.raises(NoTemplate, match="no sms template"):
        delivery_render(delivery=delivery)
