import pytest
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError

from batches.gateway.accounts import gateway_account_authenticate, gateway_account_create
from batches.gateway.public_keys import public_key_parse
from batches.models import GatewayAccount
from tests.gateway.conftest import PASSWORD, REFUSED_LOGINS, refused_login, ssh_keygen

pytestmark = pytest.mark.django_db


def _blob(private_key_path) -> bytes:
    return public_key_parse(private_key_path.with_suffix(".pub").read_text()).blob


def _login(**kwargs):
    return gateway_account_authenticate(
        **{"username": "acme-upload", "protocol": "sftp", "address": "127.0.0.1", **kwargs}
    )


def test_password_is_stored_hashed_and_lets_the_account_in(account_8002):
    assert account_8002.password != PASSWORD
    assert check_password(PASSWORD, account_8002.password)
    assert _login(password=PASSWORD) == account_8002


def test_the_fingerprint_stored_is_the_one_ssh_keygen_prints(account_8002, ssh_key):
    import subprocess

    printed = subprocess.run(
        ["ssh-keygen", "-lf", str(ssh_key.with_suffix(".pub"))], capture_output=True, text=True
    ).stdout.split()[1]
    key = account_8002.keys.get()
    assert (key.fingerprint, key.key_type, key.comment) == (
        printed,
        "ssh-ed25519",
        "client-key@test",
    )


def test_authorised_key_lets_the_account_in_and_another_key_does_not(
    account_8002, ssh_key, tmp_path
):
    assert _login(public_key=_blob(ssh_key)) == account_8002
    assert _login(public_key=_blob(ssh_keygen(tmp_path, "stranger"))) is None


@pytest.mark.parametrize("case", [*REFUSED_LOGINS, "protocol", "client inactive"])
def test_refused_logins(account_8002, case):
    login = refused_login(account_8002, case)
    if case == "protocol":
        login["protocol"] = "ftps"
    elif case == "client inactive":
        account_8002.client.is_active = False
        account_8002.client.save()
    assert _login(**login) is None


def test_an_address_inside_an_allowed_network_gets_in(account_8002):
    GatewayAccount.objects.filter(pk=account_8002.pk).update(
        allowed_networks="10.0.0.0/8, 192.0.2.0/24\n2001:db8::/32"
    )
    assert _login(password=PASSWORD, address="192.0.2.7") == account_8002
    assert _login(password=PASSWORD, address="2001:db8::5") == account_8002
    assert _login(password=PASSWORD, address="198.51.100.1") is None


def test_an_account_without_password_is_never_let_in_by_password(client_8002, ssh_key):
    account = gateway_account_create(
        client=client_8002,
        username="keys-only",
        public_keys=[ssh_key.with_suffix(".pub").read_text()],
    )
    assert account.password == ""
    assert _login(username="keys-only", password="") is None


@pytest.mark.parametrize(
    "key_type, bits, message",
    [("rsa", 1024, "at least 2048"), ("dsa", None, "not accepted")],
)
def test_weak_keys_are_refused(client_8002, tmp_path, key_type, bits, message):
    weak = ssh_keygen(tmp_path, "weak", key_type, bits).with_suffix(".pub").read_text()
    with pytest.raises(ValidationError, match=message):
        gateway_account_create(client=client_8002, username="weak", public_keys=[weak])
    assert not GatewayAccount.objects.exists()


@pytest.mark.parametrize("key_type, bits", [("rsa", 2048), ("ecdsa", 256), ("ed25519", None)])
def test_accepted_key_types(client_8002, tmp_path, key_type, bits):
    line = ssh_keygen(tmp_path, "k", key_type, bits).with_suffix(".pub").read_text()
    account = gateway_account_create(client=client_8002, username="k", public_keys=[line])
    assert account.keys.count() == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"username": "acme-upload", "password": "x"}, "is taken"),
        ({"username": "nocred"}, "password or a public key"),
        ({"username": "bad/name", "password": "x"}, "Letters, digits"),
        ({"username": "n", "password": "x", "allowed_networks": "10.0.0.0/33"}, "not a network"),
        ({"username": "n", "password": "x", "protocols": ["ftp"]}, "Unknown protocol ftp"),
        ({"username": "n", "public_keys": ["ssh-ed25519 !!!"]}, "cannot be read"),
    ],
)
def test_bad_account_input_is_refused_with_its_reason(account_8002, client_8002, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        gateway_account_create(client=client_8002, **kwargs)
    assert GatewayAccount.objects.count() == 1
