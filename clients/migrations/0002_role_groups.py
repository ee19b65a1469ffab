"""Create the Operators, Client staff and Support groups with their permissions."""

from django.db import migrations


def create_role_groups(apps, schema_editor):
    from clients.roles import sync_role_groups

    sync_role_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("clients", "0001_initial"),
        ("templates_app", "0001_initial"),
        ("notifications", "0001_initial"),
        ("batches", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_role_groups, migrations.RunPython.noop)]
