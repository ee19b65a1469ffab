from django.apps import AppConfig


class KokattoSiteConfig(AppConfig):
    """The platform itself: settings, URLs and what wires every app together (the role
    groups and their permissions, the demo data, the task queue's system checks). Installed
    last: it stands on all the others."""

    name = "kokatto_site"
    verbose_name = "Kokatto platform"

    def ready(self):
        from kokatto_site import checks  # noqa: F401 (registers the system checks)
