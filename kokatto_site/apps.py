from django.apps import AppConfig


class KokattoSiteConfig(AppConfig):
    """The platform itself: what wires every app together (the role groups and their
    permissions, the demo data), above all the apps it wires."""

    name = "kokatto_site"
    verbose_name = "Kokatto platform"
