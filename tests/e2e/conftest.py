"""Browser fixtures for the end-to-end tests: Playwright driving Debian's Chromium.

No browser is downloaded: the tests use /usr/bin/chromium (`make test` installs
it with apt-get when it can) and skip with a reason when it is absent.

Playwright's sync API keeps an asyncio event loop running in the test thread
while it is started. Under a running loop Django hands that thread a different
database connection object (asgiref's thread-critical Local switches to
context-local storage), one without the test database's serialized contents,
and refuses ORM calls unless DJANGO_ALLOW_ASYNC_UNSAFE is set. So the browser
is started per test, after the test's database work (request `page` after the
fixtures that write to the database), and the ORM is not used while it runs:
the live server answers from its own thread.
"""

import os
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# The machine may have no network: without the background-networking flags
# Chromium keeps trying (and failing) to reach Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is absent: `make test` installs it (apt-get, as root)"
        # In CI a missing browser is a broken install step, not a reason to skip.
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page (no cookies) whose console errors and script errors fail the test."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems = []
    page.on(
        "console",
        lambda message: (
            message.type == "error"
            and not message.location.get("url", "").endswith("/favicon.ico")  # the admin has none
            and problems.append(f"console: {message.text} ({message.location.get('url')})")
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield page
    if problems:
        default = Path(tempfile.gettempdir()) / "e2e.png"
        page.screenshot(path=os.environ.get("E2E_SCREENSHOT", str(default)))
    context.close()
    assert not problems, "the page reported errors:\n" + "\n".join(problems)
