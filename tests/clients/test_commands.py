"""The operators' onboarding commands, as a script would run them."""

import io

import pytest
from django.core.management import CommandError, call_command

from clients.models import Client


def run(*args, **options):
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*args, stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


def test_create_client_is_idempotent(db):
    first, _ = run("create_client", "8002", "--name", "PT Example")
    again, _ = run("create_client", "8002", "--name", "PT Example")

    assert "Created" in first
    assert "Already present" in again
    assert Client.objects.filter(client_id="8002").count() == 1


def test_create_client_refuses_an_invalid_id(db):
    with pytest.raises(CommandError, match="client_id"):
        run("create_client", "80 02", "--name", "PT Example")


def test_create_secret_key_prints_the_secret_alone_on_stdout(client_8002):
    stdout, stderr = run("create_secret_key", "8002")

    secret = stdout.strip()
    assert stdout == secret + "\n"
    assert len(secret) >= 43
    key = client_8002.secret_keys.get()
    assert key.secret() == secret
    assert key.fingerprint in stderr
    assert secret not in stderr


def test_create_secret_key_refuses_a_third_active_key(client_8002):
    run("create_secret_key", "8002")
    run("create_secret_key", "8002")

    with pytest.raises(CommandError, match="already has 2 active secret keys"):
        run("create_secret_key", "8002")


@pytest.mark.parametrize(
    ("command", "stdin"), [("create_secret_key", None), ("set_batch_password", "pw\n")]
)
def test_commands_refuse_unknown_and_inactive_clients(client_8002, command, stdin):
    options = {"stdin": io.StringIO(stdin)} if stdin else {}
    with pytest.raises(CommandError, match="Unknown client '9999'"):
        run(command, "9999", **options)

    Client.objects.filter(pk=client_8002.pk).update(is_active=False)
    options = {"stdin": io.StringIO(stdin)} if stdin else {}
    with pytest.raises(CommandError, match="Client 8002 is inactive"):
        run(command, "8002", **options)


def test_set_batch_password_reads_standard_input(client_8002):
    run("set_batch_password", "8002", stdin=io.StringIO("archive pass word\n"))

    client_8002.refresh_from_db()
    assert client_8002.batch_password() == "archive pass word"


def test_set_batch_password_refuses_an_empty_password(client_8002):
    with pytest.raises(CommandError, match="empty"):
        run("set_batch_password", "8002", stdin=io.StringIO("\n"))
    client_8002.refresh_from_db()
    assert not client_8002.has_batch_password
