"""`manage.py check` refuses outgoing-call deadlines that outlast a lease or the task timeout."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def test_the_default_settings_pass(settings):
    call_command("check")


def test_it_refuses_a_provider_deadline_not_well_below_the_delivery_lease(settings):
    # A send may last its whole deadline: with the lease gone by then, another worker
    # could claim the delivery and send it a second time.
    settings.DELIVERY_LEASE_SECONDS = 30
    settings.PROVIDER_HTTP_TIMEOUT_SECONDS = 20

    with pytest.raises(SystemCheckError, match="PROVIDER_HTTP_TIMEOUT_SECONDS"):
        call_command("check")


def test_it_refuses_a_backends_own_deadline_too(settings):
    settings.KOKATTO_CHANNEL_BACKENDS = {
        "sms": [
            {
                "BACKEND": "notifications.backends.http_sms.HttpSmsBackend",
                "OPTIONS": {"url": "https://gateway.example/sms", "timeout": (3, 100)},
            }
        ]
    }

    with pytest.raises(SystemCheckError, match=r"http_sms\.HttpSmsBackend timeout"):
        call_command("check")


def test_it_refuses_a_callback_sweep_that_could_outlast_the_task_timeout(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 60, "retry": 90}
    settings.CLIENT_CALLBACK_SWEEP_SECONDS = 50

    with pytest.raises(SystemCheckError, match="CLIENT_CALLBACK_SWEEP_SECONDS"):
        call_command("check")
