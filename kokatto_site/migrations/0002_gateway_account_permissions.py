"""Client staff see their gateway accounts and manage their keys (kokatto_site/role_permissions.py)."""

from django.db import migrations

from kokatto_site.role_permissions import sync_role_groups


def sync_roles(apps, schema_editor):
    sync_role_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("kokatto_site", "0001_role_groups"),
        ("batches", "0006_gateway_accounts"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
