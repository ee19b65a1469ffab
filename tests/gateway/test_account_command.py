import io
import sys

import pytest
from django.core.management import CommandError, call_command

from batches.gateway.accounts import gateway_account_authenticate
from batches.models import GatewayAccount
from tests.gateway.conftest import ssh_keygen

pytestmark = pytest.mark.django_db


def _create(*args, stdin=""):
    out = io.StringIO()
    old_stdin, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        call_command("create_sftp_account", *args, stdout=out)
    finally:
        sys.stdin = old_stdin
    return out.getvalue()


def test_password_from_stdin_and_key_file_make_an_account_in_one_line(client_8002, ssh_key):
    printed = _create(
        "8002",
        "acme",
        "--password-stdin",
        "--public-key",
        str(ssh_key.with_suffix(".pub")),
        "--protocols",
        "sftp,ftps",
        stdin="s3cret\n",
    )
    account = GatewayAccount.objects.get(username="acme")
    assert printed.count("\n") == 1 and account.keys.get().fingerprint in printed
    assert account.protocols() == ["sftp", "ftps"]
    assert gateway_account_authenticate(
        username="acme", password="s3cret", protocol="ftps", address="127.0.0.1"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["9999", "acme", "--password-stdin"], "No client with clientId '9999'"),
        (["8002", "acme"], "password or a public key"),
        (["8002", "acme", "--public-key", "/nonexistent.pub"], "No such file"),
        (["8002", "taken", "--password-stdin"], "is taken"),
        (["8002", "acme", "--password-stdin", "--protocols", "scp"], "Unknown protocol scp"),
    ],
)
def test_bad_input_fails_with_a_one_line_reason(client_8002, args, message):
    _create("8002", "taken", "--password-stdin", stdin="x\n")
    with pytest.raises(CommandError, match=message) as failure:
        _create(*args, stdin="pw\n")
    assert "\n" not in str(failure.value)
    assert not GatewayAccount.objects.filter(username="acme").exists()


def test_a_weak_key_file_is_refused(client_8002, tmp_path):
    weak = ssh_keygen(tmp_path, "weak", "rsa", 1024).with_suffix(".pub")
    with pytest.raises(CommandError, match="at least 2048"):
        _create("8002", "acme", "--public-key", str(weak))


def test_the_command_exits_non_zero_from_a_shell(client_8002):
    import subprocess

    finished = subprocess.run(
        [sys.executable, "manage.py", "create_sftp_account", "8002", "acme"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "kokatto_site.settings"},
    )
    assert finished.returncode != 0
