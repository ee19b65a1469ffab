"""Every BATCH_POLL_MINUTES (default 1), look in every active client's inbox."""

from django.conf import settings
from django.db import migrations

NAME = "poll batch inboxes"  # batches.inbox.POLL_SCHEDULE


def create_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=NAME,
        defaults={
            "func": "batches.tasks.poll_inboxes",
            "schedule_type": "I",  # minutes
            "minutes": settings.BATCH_POLL_MINUTES,
            "repeats": -1,
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("batches", "0002_inboxsighting_rejectedline_batch_archived_path_and_more"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
