"""End to end, in a real browser: an operator sets a client's OpenPGP key and rotates the
platform's key pair.

They paste something that is not a key (refused with its reason), upload the bank's public
key file, compare the fingerprint shown, confirm, then rotate
the platform's key (through its confirmation page) and download the new public key, which the
bank's gpg imports: its fingerprint is the one the page shows as current.
"""

import pytest
from django.urls import reverse

from batches.openpgp_keys import fingerprint_grouped, platform_key_ensure
from tests.factories import TEST_PASSWORD, ClientFactory, UserFactory
from tests.openpgp.conftest import client_gpg  # noqa: F401 (the fixture)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

BANK = "Bank Demo Ops <ops@bank.example>"


@pytest.fixture
def keys(client_gpg, tmp_path):  # noqa: F811
    """Client 8002 with a platform key, an operator and the bank's key file, before the browser."""
    client = ClientFactory(client_id="8002", name="PT Bank Demo Nusantara")
    UserFactory(username="operator", role="operator")
    old = platform_key_ensure(client)
    bank_fingerprint = client_gpg.new_key(BANK, "rsa3072", "sign")
    key_file = tmp_path / "bank.asc"
    key_file.write_text(client_gpg.export(BANK))
    return {
        "client_pk": client.pk,
        "old": old.fingerprint,
        "bank": bank_fingerprint,
        "file": key_file,
    }


def test_an_operator_sets_the_client_key_then_rotates_and_downloads_the_new_public_key(
    keys,
    client_gpg,  # noqa: F811
    live_server,
    page,
    tmp_path,
):
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("input[type=submit]")
    page.goto(live_server.url + reverse("admin:batches_openpgpplatformkey_changelist"))
    page.get_by_role("link", name="Keys by client").click()
    page.get_by_role("link", name="8002 · PT Bank Demo Nusantara").click()

    page.get_by_role("link", name="Set the client's key…").click()
    page.fill("textarea[name=key_text]", "not a key")
    page.get_by_role("button", name="Check the key").click()
    expect(page.locator("#key-error")).to_have_text("No OpenPGP public key found in the file.")
    page.fill("textarea[name=key_text]", "")
    page.set_input_files("input[name=key_file]", str(keys["file"]))
    page.get_by_role("button", name="Check the key").click()
    expect(page.locator("#fingerprint")).to_have_text(fingerprint_grouped(keys["bank"]))
    expect(page.locator("#key-description")).to_contain_text("RSA 3072")
    page.get_by_role("button", name="Confirm: store this key").click()
    expect(page.locator("#client-key")).to_contain_text(fingerprint_grouped(keys["bank"]))
    expect(page.locator("#client-key")).to_contain_text("by operator")

    page.get_by_role("link", name="Rotate…").click()
    expect(page.locator("#content-main")).to_contain_text(
        "The client must download the new public key"
    )
    page.get_by_role("button", name="Yes, generate the new key").click()
    current = page.locator("tr.platform-key-current")
    expect(current).to_have_count(1)
    expect(page.locator("tr.platform-key-active-still-decrypts")).to_contain_text(
        fingerprint_grouped(keys["old"])
    )
    new_fingerprint = current.locator("code.fingerprint").inner_text().replace(" ", "")
    assert new_fingerprint != keys["old"]

    with page.expect_download() as download:
        current.get_by_role("link", name="download").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    client_gpg.run("--import", str(saved))
    listing = client_gpg.run("--with-colons", "--list-keys", new_fingerprint).stdout.decode()
    assert f"fpr:::::::::{new_fingerprint}:" in listing
