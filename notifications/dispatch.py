"""Getting deliveries out of the door. For now: rendering a delivery's content.

The delivery pipeline (claiming, sending, retries) builds on these functions.
"""

from django.db import transaction

from notifications.models import Delivery
from templates_app.models import ContentTemplate
from templates_app.rendering import prepare
from templates_app.validation import PART_ESCAPES_HTML, field_formats


class NoTemplate(Exception):
    """The delivery's application has no template for its medium."""


@transaction.atomic
def delivery_render(*, delivery: Delivery) -> Delivery:
    """Render the delivery's content with its template's current version and record both.

    The rendered text and the version are stored on the delivery, so what was
    sent stays known after the template changes. Raises NoTemplate.
    """
    notification = delivery.notification
    application = notification.application
    template = ContentTemplate.objects.filter(
        application=application, medium=delivery.medium
    ).first()
    version = template.versions.order_by("-number").first() if template else None
    if version is None:
        raise NoTemplate(f"{application} has no {delivery.medium} template.")
    fields = field_formats(application)
    for part, escape_html in PART_ESCAPES_HTML.items():
        text = getattr(version, part)
        setattr(delivery, part, prepare(text, fields, escape_html=escape_html)(notification.params))
    delivery.template_version = version
    delivery.save(update_fields=["subject", "body", "html_body", "template_version", "updated_at"])
    return delivery
