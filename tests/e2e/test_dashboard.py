"""End to end, in Debian's Chromium: the operator's dashboard draws its charts under the CSP.

The demo data (seed_demo: notifications sent through the pipeline, one batch) fills it.
The `page` fixture fails the test on any console error; a `securitypolicyviolation`
listener, added before the page's own scripts run, catches what the CSP blocked.
"""

import os
import tempfile
from pathlib import Path

import pytest
from django.urls import reverse

# seed_demo before the browser starts, and signing in with a demo login.
from tests.e2e.test_content_security_policy import demo_data, sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

__all__ = ["demo_data"]

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

# The README's screenshot (docs/screenshots/dashboard.png) is this test's: refreshed with
# SCREENSHOT_DIR=docs/screenshots; by default the test leaves the committed one alone.
SCREENSHOT = Path(os.environ.get("SCREENSHOT_DIR", tempfile.gettempdir())) / "dashboard.png"

WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""

# A canvas is drawn when some of its pixels are not transparent.
DRAWN_PIXELS = """
(canvas) => {
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let i = 3; i < pixels.length; i += 4) {
    if (pixels[i] !== 0) drawn += 1;
  }
  return drawn;
}
"""


def test_an_operator_sees_the_dashboards_charts_drawn(demo_data, live_server, page):
    page.add_init_script(WATCH_CSP)
    page.set_viewport_size({"width": 1400, "height": 1100})
    sign_in(page, live_server, "operator")
    page.goto(live_server.url + reverse("admin:index"))

    dashboard = page.locator("#platform-dashboard")
    expect(dashboard).to_have_attribute("data-charts-drawn", "true")
    for chart in ("#chart-accepted", "#chart-deliveries"):
        assert page.locator(chart).evaluate(DRAWN_PIXELS) > 1000, chart
    expect(page.locator("#batches-in-progress")).to_be_visible()
    expect(page.locator("#cluster-health")).to_contain_text("tasks queued")
    assert page.evaluate("window.cspViolations") == []
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_client_staff_see_their_own_dashboard_drawn_without_the_platforms_internals(
    demo_data, live_server, page
):
    page.add_init_script(WATCH_CSP)
    sign_in(page, live_server, "staff8003")
    page.goto(live_server.url + reverse("admin:index"))

    expect(page.locator("#platform-dashboard")).to_have_attribute("data-charts-drawn", "true")
    assert page.locator("#chart-accepted").evaluate(DRAWN_PIXELS) > 1000
    expect(page.locator("#accepted-per-client tbody")).to_contain_text("8003")
    expect(page.locator("#accepted-per-client tbody")).not_to_contain_text("8002")
    expect(page.locator("#cluster-health")).to_have_count(0)
    assert page.evaluate("window.cspViolations") == []
