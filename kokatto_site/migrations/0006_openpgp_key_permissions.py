"""Client staff and support see their client's OpenPGP keys (read-only); operators all."""

from django.db import migrations

from kokatto_site.role_permissions import sync_role_groups


def sync_roles(apps, schema_editor):
    sync_role_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("kokatto_site", "0005_personal_data_permissions_and_retention_schedule"),
        ("batches", "0010_openpgp_keys"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
