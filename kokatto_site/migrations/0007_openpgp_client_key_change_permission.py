"""Client staff set their client's OpenPGP public key (batches.change_openpgpclientkey)."""

from django.db import migrations

from kokatto_site.role_permissions import sync_role_groups


def sync_roles(apps, schema_editor):
    sync_role_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("kokatto_site", "0006_openpgp_key_permissions"),
        ("batches", "0011_openpgp_platform_key_created_by_retired_by"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
