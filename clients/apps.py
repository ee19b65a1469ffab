from django.apps import AppConfig


class ClientsConfig(AppConfig):
    name = "clients"

    def ready(self):
        from clients import checks  # noqa: F401 (registers the deploy checks)
