"""The README's curl + openssl example works as written, against a live server."""

import io
import re
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

from notifications.models import Notification

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_api_example() -> str:
    section = README.read_text().split("## The real-time API", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_readme_curl_example_creates_a_notification(live_server, scratch_var):
    call_command("seed_demo", force=True, stdout=io.StringIO())

    result = subprocess.run(
        ["bash", "-c", readme_api_example()],
        env={"PATH": "/usr/bin:/bin", "KOKATTO_URL": live_server.url},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert result.stdout.strip().endswith("HTTP 201"), result.stdout + result.stderr
    assert '"code":"OK"' in result.stdout
    assert Notification.objects.filter(reference__startswith="README-").count() == 1
