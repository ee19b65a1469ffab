"""Give operators the sign-in security permissions (lock-outs, second-factor devices)."""

from django.db import migrations


def add_sign_in_permissions(apps, schema_editor):
    from clients.roles import sync_role_groups

    sync_role_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0002_role_groups"),
        ("axes", "0010_accessattemptexpiration"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(add_sign_in_permissions, migrations.RunPython.noop)]
