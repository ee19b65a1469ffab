"""Give every template saved before versions existed its version 1."""

from django.db import migrations

CONTENT_FIELDS = ("subject", "body", "html_body", "provider_template_name")


def record_first_versions(apps, schema_editor):
    ContentTemplate = apps.get_model("templates_app", "ContentTemplate")
    TemplateVersion = apps.get_model("templates_app", "TemplateVersion")
    for template in ContentTemplate.objects.filter(versions__isnull=True):
        TemplateVersion.objects.create(
            template=template,
            number=1,
            change_summary="recorded when versions were introduced",
            **{name: getattr(template, name) for name in CONTENT_FIELDS},
        )


class Migration(migrations.Migration):
    dependencies = [
        ("templates_app", "0002_contenttemplate_provider_template_name_and_more"),
        ("clients", "0004_application_sample_values_and_more"),
    ]

    operations = [
        migrations.RunPython(record_first_versions, migrations.RunPython.noop),
    ]
