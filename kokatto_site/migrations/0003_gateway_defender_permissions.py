"""Give operators the permissions of the gateway's bans and failed logins (batches)."""

from django.db import migrations

from kokatto_site.role_permissions import sync_role_groups


def sync_roles(apps, schema_editor):
    sync_role_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("kokatto_site", "0002_gateway_account_permissions"),
        ("batches", "0007_gateway_defender"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
