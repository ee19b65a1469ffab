"""Operators get the personal-data access records and retention runs (read-only in the
admin); the daily "purge personal data" schedule, at 02:30 in the platform's time zone."""

from datetime import datetime, time, timedelta

from django.db import migrations
from django.utils import timezone

from kokatto_site.role_permissions import sync_role_groups

SCHEDULE = "purge personal data"


def sync_roles(apps, schema_editor):
    sync_role_groups(apps)


def create_schedule(apps, schema_editor):
    now = timezone.localtime()
    first = datetime.combine(now.date(), time(2, 30), tzinfo=now.tzinfo)
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=SCHEDULE,
        defaults={
            "func": "kokatto_site.tasks.purge_personal_data",
            "schedule_type": "D",
            "repeats": -1,
            "next_run": first if first > now else first + timedelta(days=1),
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("kokatto_site", "0004_gateway_event_permissions"),
        ("notifications", "0017_personal_data_access_and_retention"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
        migrations.RunPython(create_schedule, delete_schedule),
    ]
