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


def add_callback_permissions(apps, schema_editor):
    from clients.roles import sync_role_groups

    sync_role_groups(apps)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0006_client_callbacks")]

    operations = [
        migrations.RunPython(create_schedule, delete_schedule),
        migrations.RunPython(add_callback_permissions, migrations.RunPython.noop),
    ]
