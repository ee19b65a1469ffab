from django.apps import AppConfig

from batches import decryption


class BatchesConfig(AppConfig):
    name = "batches"

    def ready(self):
        # Modules that need the models loaded are imported here, as Django requires.
        from batches import (
            checks,  # noqa: F401 (registers the system checks)
            openpgp_decryption,  # noqa: F401 (registers the "openpgp" method)
        )
        from clients.models import batch_encryption_names_provide

        # The choices of Client.batch_encryption: read each time, so a method
        # registered later (or in a test) is offered too.
        batch_encryption_names_provide(lambda: decryption.METHODS)
