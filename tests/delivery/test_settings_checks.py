"""`manage.py check` refuses delivery and callback settings whose sends could outlast
their lease or their task's timeout."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def check_output() -> str:
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    return out.getvalue()


@pytest.mark.parametrize(("lease", "send"), [(60, 30), (20, 30), (120, 0)])
def test_a_lease_not_above_twice_the_send_timeout_stops_the_check(settings, lease, send):
    settings.DELIVERY_LEASE_SECONDS = lease
    settings.DELIVERY_SEND_TIMEOUT_SECONDS = send

    with pytest.raises(SystemCheckError, match=r"notifications\.E001"):
        check_output()


def test_a_lease_of_more_than_twice_the_send_timeout_passes(settings):
    settings.DELIVERY_LEASE_SECONDS = 61
    settings.DELIVERY_SEND_TIMEOUT_SECONDS = 30

    assert "no issues" in check_output()


def test_a_chunk_time_not_well_within_the_task_timeout_stops_the_check(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 600, "retry": 700}
    settings.DELIVERY_CHUNK_SECONDS = 400
    settings.DELIVERY_SEND_TIMEOUT_SECONDS = 30

    with pytest.raises(SystemCheckError, match=r"notifications\.E002"):
        check_output()


def test_the_shipped_delivery_settings_pass_the_checks():
    assert "no issues" in check_output()


def test_it_refuses_a_backends_own_deadline_above_the_send_timeout(settings):
    settings.KOKATTO_CHANNEL_BACKENDS = {
        "sms": [
            {
                "BACKEND": "notifications.backends.http_sms.HttpSmsBackend",
                "OPTIONS": {"url": "https://gateway.example/sms", "timeout": (3, 100)},
            }
        ]
    }

    with pytest.raises(SystemCheckError, match=r"http_sms\.HttpSmsBackend timeout"):
        check_output()


def test_it_refuses_a_callback_sweep_that_could_outlast_the_task_timeout(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 60, "retry": 90}
    settings.CLIENT_CALLBACK_SWEEP_SECONDS = 50

    with pytest.raises(SystemCheckError, match="CLIENT_CALLBACK_SWEEP_SECONDS"):
        check_output()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EMAIL_MAX_CONNECTIONS", 0),
        ("EMAIL_CONNECTION_MAX_MESSAGES", 0),
        ("EMAIL_CONNECTION_MAX_SECONDS", 0),
    ],
)
def test_an_smtp_pool_that_could_never_send_stops_the_check(settings, name, value):
    setattr(settings, name, value)

    with pytest.raises(SystemCheckError, match=rf"notifications\.E007.*{name}"):
        check_output()
