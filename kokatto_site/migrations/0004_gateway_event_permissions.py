"""Let every role view the gateway's audit trail (client staff: their own client's)."""

from django.db import migrations

from kokatto_site.role_permissions import sync_role_groups


def sync_roles(apps, schema_editor):
    sync_role_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("kokatto_site", "0003_gateway_defender_permissions"),
        ("batches", "0008_gateway_events"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
