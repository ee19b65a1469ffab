"""The sweeper for client callbacks: every minute, POST those that are due."""

from django.db import migrations

NAME = "send client callbacks"


def create_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=NAME,
        defaults={
            "func": "notifications.tasks.send_client_callbacks",
            "schedule_type": "I",  # minutes
            "minutes": 1,
            "repeats": -1,
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("notifications", "0006_client_callbacks")]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
