from django.apps import AppConfig


class KokattoSiteConfig(AppConfig):
    """The site itself: settings, URLs and what wires every app together. Installed last:
    it stands on all the others."""

    name = "kokatto_site"
    verbose_name = "Kokatto"

    def ready(self):
        from kokatto_site import checks  # noqa: F401 (registers the system checks)
