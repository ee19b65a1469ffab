"""openpgp_keys --rotate and --retire: one line (or the new key) out, one-line reasons on error."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from batches.openpgp_keys import (
    fingerprint_grouped,
    platform_key_current,
    platform_key_ensure,
    platform_keys_active,
)


def run(*args) -> str:
    out = StringIO()
    call_command("openpgp_keys", *args, stdout=out)
    return out.getvalue()


def refused(*args) -> str:
    with pytest.raises(CommandError) as failure:
        run(*args)
    assert "\n" not in str(failure.value)
    return str(failure.value)


def test_rotate_prints_the_new_keys_fingerprint_and_keeps_the_old_key_active(client_8002):
    old = platform_key_ensure(client_8002)
    out = run("8002", "--rotate")
    new = platform_key_current(client_8002)
    assert out == f"Client 8002's new OpenPGP key: {new.fingerprint}\n"
    assert new != old
    assert set(platform_keys_active(client_8002)) == {old, new}
    assert new.created_by is None


def test_rotate_with_export_prints_the_new_public_key(client_8002, client_gpg):
    platform_key_ensure(client_8002)
    out = run("8002", "--rotate", "--export")
    new = platform_key_current(client_8002)
    assert out == new.public_key
    assert client_gpg.run("--import", input=out.encode()).returncode == 0
    listing = client_gpg.run("--with-colons", "--list-keys", new.fingerprint).stdout.decode()
    assert new.fingerprint in listing


def test_retire_takes_the_fingerprint_plain_or_grouped(client_8002, client_8003):
    first = platform_key_ensure(client_8002)
    run("8002", "--rotate")
    second = platform_key_current(client_8002)
    run("8002", "--rotate")
    assert run("8002", "--retire", first.fingerprint) == (
        f"Client 8002's OpenPGP key retired: {first.fingerprint}\n"
    )
    assert run("8002", "--retire", fingerprint_grouped(second.fingerprint).lower()) == (
        f"Client 8002's OpenPGP key retired: {second.fingerprint}\n"
    )
    assert list(platform_keys_active(client_8002)) == [platform_key_current(client_8002)]


def test_retiring_the_only_active_key_is_refused(client_8002):
    key = platform_key_ensure(client_8002)
    assert refused("8002", "--retire", key.fingerprint).startswith(
        "Client 8002's only active key cannot be retired"
    )
    assert platform_key_current(client_8002) == key


def test_another_clients_key_is_not_found(client_8002, client_8003):
    platform_key_ensure(client_8002)
    run("8002", "--rotate")
    other = platform_key_ensure(client_8003)
    assert refused("8002", "--retire", other.fingerprint) == (
        f"Client 8002 has no platform key {other.fingerprint}."
    )
    other.refresh_from_db()
    assert other.retired_at is None


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["8002"], "Say what to do: --export, --rotate, --retire FINGERPRINT or "),
        (["8002", "--export", "--retire", "ABCD"], "--export goes alone or with --rotate."),
        (["9999", "--rotate"], "Unknown client '9999'."),
        (["8002", "--retire", "ABCD 1234"], "Client 8002 has no platform key ABCD 1234."),
    ],
)
def test_bad_input_exits_with_a_one_line_reason(client_8002, args, reason):
    assert refused(*args).startswith(reason)


def test_rotate_and_retire_together_are_refused_by_the_parser(client_8002):
    with pytest.raises(CommandError, match="not allowed with argument"):
        run("8002", "--rotate", "--retire", "ABCD")
