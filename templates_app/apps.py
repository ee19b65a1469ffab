from django.apps import AppConfig

from clients.schema_changes import schema_change_check_register


class TemplatesAppConfig(AppConfig):
    name = "templates_app"
    verbose_name = "Content templates"

    def ready(self):
        from templates_app.template_checks import template_schema_change_problems

        # An application's field schema cannot change under its templates (clients/forms.py).
        schema_change_check_register(template_schema_change_problems)
