"""Created the role groups; they span every app, so kokatto_site's migrations now do it.

Kept (with no operation) because later migrations depend on it. See
kokatto_site/migrations/0001_role_groups.py.
"""

from django.db import migrations


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

    operations = []
