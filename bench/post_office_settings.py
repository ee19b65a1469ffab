"""Settings for bench/dispatch_post_office.py only: the project's, plus django-post_office.

post_office queues Django's email as rows and sends them with `manage.py
send_queued_mail`, through Django's SMTP backend (EMAIL_URL). BATCH_SIZE and
THREADS_PER_PROCESS come from the benchmark's environment.
"""

import os

from kokatto_site.settings import *  # noqa: F403
from kokatto_site.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "post_office"]
POST_OFFICE = {
    "BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"},
    "DEFAULT_PRIORITY": "medium",
    "MESSAGE_ID_ENABLED": True,
    "BATCH_SIZE": int(os.environ.get("POST_OFFICE_BATCH_SIZE", "100")),
    "THREADS_PER_PROCESS": int(os.environ.get("POST_OFFICE_THREADS_PER_PROCESS", "5")),
}
