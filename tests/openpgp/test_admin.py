"""The admin shows fingerprints and offers the platform's public key, scoped by client."""

from django.urls import reverse

from batches.openpgp_keys import client_key_set, fingerprint_grouped, platform_key_ensure


def download_url(key) -> str:
    return reverse("admin:batches_openpgpplatformkey_public", args=[key.pk])


def test_client_staff_download_their_clients_public_key(staff_client, client_8002):
    key = platform_key_ensure(client_8002)
    response = staff_client.get(download_url(key))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pgp-keys"
    assert response.content.decode() == key.public_key
    assert "attachment" in response["Content-Disposition"]


def test_client_staff_cannot_download_another_clients_key(staff_client, client_8003):
    key = platform_key_ensure(client_8003)
    assert staff_client.get(download_url(key)).status_code == 404
    listing = staff_client.get(reverse("admin:batches_openpgpplatformkey_changelist"))
    assert fingerprint_grouped(key.fingerprint) not in listing.content.decode()
    change = reverse("admin:batches_openpgpplatformkey_change", args=[key.pk])
    assert staff_client.get(change).status_code in (302, 404)


def test_the_key_page_shows_the_fingerprint_and_never_the_private_key(operator_client, client_8002):
    key = platform_key_ensure(client_8002)
    page = operator_client.get(reverse("admin:batches_openpgpplatformkey_change", args=[key.pk]))
    text = page.content.decode()
    assert fingerprint_grouped(key.fingerprint) in text
    assert download_url(key) in text
    assert "PRIVATE KEY" not in text
    assert key.private_key_encrypted not in text


def test_the_client_key_list_shows_its_fingerprint(staff_client, client_8002, client_gpg):
    client_gpg.new_key("bank <ops@bank.example>")
    key = client_key_set(client_8002, client_gpg.export("bank <ops@bank.example>"))
    listing = staff_client.get(reverse("admin:batches_openpgpclientkey_changelist"))
    assert fingerprint_grouped(key.fingerprint) in listing.content.decode()
