"""`manage.py check` refuses task-queue settings that would run a long ingest twice."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def check_output(**kwargs) -> str:
    out = StringIO()
    call_command("check", stdout=out, stderr=out, **kwargs)
    return out.getvalue()


def test_the_shipped_settings_pass_the_checks():
    assert "no issues" in check_output()


@pytest.mark.parametrize("retry", [1800, 600])
def test_a_retry_not_above_the_timeout_stops_the_check(settings, retry):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 1800, "retry": retry}

    with pytest.raises(SystemCheckError, match=r"batches\.E001.*retry \(\d+ s\) is not above"):
        check_output()


def test_catch_up_on_is_warned_about(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "catch_up": True}

    assert "batches.W001" in check_output()


@pytest.mark.parametrize("max_lines", [0, 2**31])
def test_a_line_limit_past_what_the_line_columns_hold_stops_the_check(settings, max_lines):
    settings.BATCH_MAX_LINES = max_lines

    with pytest.raises(SystemCheckError, match=r"batches\.E002"):
        check_output()


@pytest.mark.parametrize("gpg_seconds", [300, 900])
def test_a_gpg_deadline_not_below_the_lease_stops_the_check(settings, gpg_seconds):
    settings.BATCH_LEASE_SECONDS = 300
    settings.OPENPGP_GPG_SECONDS = gpg_seconds

    with pytest.raises(SystemCheckError, match=r"batches\.E005.*OPENPGP_GPG_SECONDS \(\d+\)"):
        check_output()


def test_a_gpg_deadline_below_the_lease_passes_the_check(settings):
    settings.BATCH_LEASE_SECONDS = 300
    settings.OPENPGP_GPG_SECONDS = 299

    assert "batches.E005" not in check_output()


def test_a_gpg_home_dir_too_long_for_the_agents_sockets_stops_the_check(settings, tmp_path):
    settings.OPENPGP_HOME_DIR = "/dev/shm/" + "d" * 52  # noqa: S108 (never made)

    with pytest.raises(SystemCheckError, match=r"batches\.E006"):
        check_output()
    settings.OPENPGP_HOME_DIR = "/dev/shm/" + "d" * 51  # noqa: S108
    assert "batches.E006" not in check_output()
