"""Create the Operators, Client staff and Support groups with exactly their declared permissions.

The permissions span every app, so this migration runs after the last migration of
each: a new model's permissions come with a new migration here that depends on the
migration adding the model (kokatto_site/role_permissions.py).
"""

from django.db import migrations

from kokatto_site.role_permissions import sync_role_groups


def sync_roles(apps, schema_editor):
    sync_role_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("axes", "0010_accessattemptexpiration"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
        ("clients", "0008_application_id_with_client"),
        ("templates_app", "0003_first_versions"),
        ("notifications", "0015_early_receipts"),
        ("batches", "0005_runs_since_progress_and_rejected_reference_index"),
        ("sign_in", "0001_operator_permissions"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
