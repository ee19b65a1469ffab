import pytest
from django.contrib.auth.hashers import check_password
from django.urls import reverse

from batches.gateway.accounts import gateway_account_create
from batches.models import GatewayAccount, GatewayPublicKey
from tests.gateway.conftest import ssh_keygen

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:batches_gatewayaccount_changelist")


def _change_url(account):
    return reverse("admin:batches_gatewayaccount_change", args=[account.pk])


def _inline_post(account, **extra):
    data = {
        "keys-TOTAL_FORMS": "0",
        "keys-INITIAL_FORMS": "0",
        "keys-MIN_NUM_FORMS": "0",
        "keys-MAX_NUM_FORMS": "1000",
    }
    keys = list(account.keys.all()) if account.pk else []
    for index, key in enumerate(keys):
        data[f"keys-{index}-id"] = str(key.pk)
        data[f"keys-{index}-account"] = str(account.pk)
    data["keys-INITIAL_FORMS"] = data["keys-TOTAL_FORMS"] = str(len(keys))
    data.update(extra)
    return data


def test_operator_creates_an_account_with_a_password_never_shown(operator_client, client_8002):
    response = operator_client.post(
        reverse("admin:batches_gatewayaccount_add"),
        {
            "client": client_8002.pk,
            "username": "acme",
            "enabled": "on",
            "sftp_allowed": "on",
            "allowed_networks": "",
            "new_password": "s3cret-pw",
            **_inline_post(GatewayAccount()),
        },
    )
    assert response.status_code == 302
    account = GatewayAccount.objects.get(username="acme")
    assert check_password("s3cret-pw", account.password)
    page = operator_client.get(_change_url(account)).content.decode()
    assert account.password not in page and "s3cret-pw" not in page


def test_a_bad_network_is_refused_in_the_form(operator_client, account_8002):
    data = {
        "client": account_8002.client.pk,
        "username": "acme-upload",
        "enabled": "on",
        "allowed_networks": "10.0.0.0/8, example.com",
        **_inline_post(account_8002),
    }
    response = operator_client.post(_change_url(account_8002), data)
    assert response.status_code == 200
    assert "&#x27;example.com&#x27; is not a network" in response.content.decode()


def test_client_staff_see_their_accounts_but_not_another_clients(
    staff_client, account_8002, client_8003
):
    other = gateway_account_create(client=client_8003, username="other", password="x")
    listing = staff_client.get(CHANGELIST).content.decode()
    assert "acme-upload" in listing and "other" not in listing.split("result_list")[-1]
    assert staff_client.get(_change_url(other)).status_code == 302
    page = staff_client.get(_change_url(account_8002)).content.decode()
    assert account_8002.password not in page and 'name="new_password"' not in page
    assert 'name="username"' not in page  # read-only for client staff


def test_client_staff_add_and_remove_their_own_keys(staff_client, account_8002, tmp_path):
    old_key = account_8002.keys.get()
    new_line = ssh_keygen(tmp_path, "laptop").with_suffix(".pub").read_text()
    data = _inline_post(account_8002, **{"keys-0-DELETE": "on"})
    data.update(
        {
            "keys-TOTAL_FORMS": "2",
            "keys-1-key": new_line,
            "keys-1-comment": "",
            "keys-1-account": str(account_8002.pk),
        }
    )
    response = staff_client.post(_change_url(account_8002), data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    key = account_8002.keys.get()
    assert key.pk != old_key.pk and key.comment == "laptop@test"
    assert not GatewayPublicKey.objects.filter(pk=old_key.pk).exists()


def test_client_staff_cannot_add_a_weak_key(staff_client, account_8002, tmp_path):
    weak = ssh_keygen(tmp_path, "weak", "rsa", 1024).with_suffix(".pub").read_text()
    data = _inline_post(account_8002)
    data.update({"keys-TOTAL_FORMS": "2", "keys-1-key": weak, "keys-1-comment": ""})
    response = staff_client.post(_change_url(account_8002), data)
    assert "at least 2048 are required" in response.content.decode()
    assert account_8002.keys.count() == 1


def test_client_staff_cannot_create_or_delete_accounts(staff_client, account_8002):
    assert staff_client.get(reverse("admin:batches_gatewayaccount_add")).status_code == 403
    delete = reverse("admin:batches_gatewayaccount_delete", args=[account_8002.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert GatewayAccount.objects.filter(pk=account_8002.pk).exists()


def test_the_account_list_shows_the_host_key_fingerprint_clients_pin(staff_client, settings):
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        key_file = Path(folder) / "host_key"
        key_file.write_text(settings.SFTP_HOST_KEY.strip() + "\n")
        key_file.chmod(0o600)
        printed = subprocess.run(
            ["ssh-keygen", "-lf", str(key_file)], capture_output=True, text=True, check=True
        ).stdout.split()[1]
    assert f"SFTP host key fingerprint: {printed}" in staff_client.get(CHANGELIST).content.decode()
