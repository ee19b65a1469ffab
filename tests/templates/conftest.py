import pytest

from tests.admin_forms import form_data
from tests.factories import ContentTemplateFactory


@pytest.fixture
def email_template(app_8002):
    return ContentTemplateFactory(
        application=app_8002,
        medium="email",
        subject="Reminder for [customerName]",
        body="Dear [customerName]",
        html_body="<p>Dear [customerName]</p>",
    )


def change_url(template) -> str:
    return f"/admin/templates_app/contenttemplate/{template.pk}/change/"


def submit(http, template, **changes):
    """Submit the template's change form with some fields changed, as a browser would."""
    data = form_data(http.get(change_url(template)))
    data.update(changes)
    return http.post(change_url(template), data, follow=True)
