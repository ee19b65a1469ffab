"""The admin's front page shows the dashboard to every role, each its own clients' figures."""

import json
import re

import pytest
from django.urls import reverse

from batches.models import BatchStatus
from notifications.models import Delivery
from tests.admin.conftest import MARKERS_8003, assert_no_8003_data, html
from tests.factories import BatchFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def figures_of_both_clients(tenant_data):
    """tenant_data plus a batch in progress each and a whatsapp delivery only 8003 has."""
    Delivery.objects.filter(pk=tenant_data.other.delivery.pk).update(medium="whatsapp")
    for rows in (tenant_data.own, tenant_data.other):
        BatchFactory(
            client=rows.client,
            file_name=f"progress-{rows.client.client_id}.7z",
            status=BatchStatus.PROCESSING,
            bytes_total=200,
            bytes_done=50,
        )
    return tenant_data


def chart_data(page: str) -> dict:
    [data] = re.findall(r'<script id="dashboard-data" type="application/json">(.*?)</script>', page)
    return json.loads(data)


def test_operators_see_every_clients_figures_the_cluster_and_the_app_list(
    operator_client, figures_of_both_clients
):
    page = html(operator_client.get(reverse("admin:index")))

    assert 'id="platform-dashboard"' in page
    assert "progress-8002.7z" in page and "progress-8003.7z" in page
    assert '<progress max="100" value="25"' in page
    assert 'id="cluster-health"' in page
    assert "active bans" in page
    assert chart_data(page)["media"] == ["sms", "whatsapp"]
    assert sum(sum(series["data"]) for series in chart_data(page)["accepted"]) == 2
    # The control panel's pages are still listed below.
    assert reverse("admin:notifications_notification_changelist") in page


def test_support_sees_the_same_dashboard(support_client, figures_of_both_clients):
    page = html(support_client.get(reverse("admin:index")))

    assert "progress-8003.7z" in page
    assert 'id="cluster-health"' in page


def test_client_staff_see_only_their_clients_figures_in_the_page_and_the_chart_data(
    staff_client, figures_of_both_clients
):
    page = html(staff_client.get(reverse("admin:index")))

    assert "progress-8002.7z" in page
    assert "progress-8003.7z" not in page
    assert_no_8003_data(page)
    data = chart_data(page)
    assert data["media"] == ["sms"]
    assert sum(sum(series["data"]) for series in data["accepted"]) == 1
    assert "8003" not in json.dumps(data)
    # Never the platform's internals: the task queue, the gateway's bans.
    assert 'id="cluster-health"' not in page
    assert "active bans" not in page


def test_client_staff_of_another_client_share_no_cached_figures(
    client, figures_of_both_clients, staff_8002
):
    staff_8003 = UserFactory(role="client_staff", clients=[figures_of_both_clients.other.client])
    client.force_login(staff_8002)
    client.get(reverse("admin:index"))  # caches 8002's figures
    client.force_login(staff_8003)

    page = html(client.get(reverse("admin:index")))

    assert "progress-8003.7z" in page
    assert "progress-8002.7z" not in page


def test_a_staff_user_without_a_role_sees_an_empty_dashboard(client, figures_of_both_clients):
    client.force_login(UserFactory(role=None))

    page = html(client.get(reverse("admin:index")))

    assert "progress-800" not in page
    assert MARKERS_8003["file_name"] not in page
    assert chart_data(page)["media"] == ["sms", "email", "whatsapp"]


def test_the_page_has_no_inline_script_or_style_under_the_csp(operator_client, tenant_data):
    answer = operator_client.get(reverse("admin:index"))
    page = html(answer)

    policy = answer["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    # Every script is a file but the JSON data, which a browser never runs.
    scripts = re.findall(r"<script([^>]*)>", page)
    assert all("src=" in attrs or 'type="application/json"' in attrs for attrs in scripts)
    assert "vendor/chartjs/chart.umd.min.js" in page
    assert " style=" not in page
    assert "<style" not in page
