"""openpgp_keys and set_batch_encryption: one line (or the key) out, one-line reasons on error."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from batches.management.commands.openpgp_keys import Command as OpenPGPKeysCommand
from batches.models import OpenPGPPlatformKey


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_export_prints_the_public_key_creating_the_pair_once(client_8002, client_gpg):
    first = run("openpgp_keys", "8002", "--export")
    assert first.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert "PRIVATE" not in first
    assert run("openpgp_keys", "8002", "--export") == first
    assert OpenPGPPlatformKey.objects.filter(client=client_8002).count() == 1
    imported = client_gpg.run("--import", input=first.encode())
    assert imported.returncode == 0


def test_import_client_key_prints_its_fingerprint(client_8002, client_gpg, tmp_path):
    fingerprint = client_gpg.new_key("bank <ops@bank.example>")
    key_file = tmp_path / "bank.asc"
    key_file.write_text(client_gpg.export("bank <ops@bank.example>"))
    out = run("openpgp_keys", "8002", "--import-client-key", str(key_file))
    assert out == f"Client 8002's OpenPGP key set: {fingerprint}\n"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["9999", "--export"], "Unknown client '9999'."),
        (["8002", "--import-client-key", "/nonexistent.asc"], "Cannot read /nonexistent.asc: "),
    ],
)
def test_bad_input_exits_with_a_one_line_reason(client_8002, args, reason):
    with pytest.raises(CommandError) as failure:
        run("openpgp_keys", *args)
    assert str(failure.value).startswith(reason)
    assert "\n" not in str(failure.value)


def test_a_binary_or_invalid_key_file_is_refused(client_8002, tmp_path):
    binary = tmp_path / "key.gpg"
    binary.write_bytes(b"\x99\x01\xff\xfe")
    with pytest.raises(CommandError, match="not an ASCII-armoured key"):
        run("openpgp_keys", "8002", "--import-client-key", str(binary))
    garbage = tmp_path / "key.asc"
    garbage.write_text("hello")
    with pytest.raises(CommandError, match=r"No OpenPGP public key found in the file\."):
        run("openpgp_keys", "8002", "--import-client-key", str(garbage))


def test_a_command_failure_exits_non_zero_with_one_line_on_stderr(client_8002, capsys):
    with pytest.raises(SystemExit) as exit_:
        OpenPGPKeysCommand().run_from_argv(["manage.py", "openpgp_keys", "9999", "--export"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == "CommandError: Unknown client '9999'.\n"


@pytest.mark.parametrize("method", ["none", "7z"])
def test_set_batch_encryption_to_7z_or_none(client_8002, method):
    assert run("set_batch_encryption", "8002", method) == f"Client 8002's batch files: {method}.\n"
    client_8002.refresh_from_db()
    assert client_8002.batch_encryption == method


def test_openpgp_makes_sure_the_platform_key_exists(client_8002):
    assert run("set_batch_encryption", "8002", "openpgp") == (
        "Client 8002's batch files: openpgp, signature not required.\n"
    )
    client_8002.refresh_from_db()
    assert (client_8002.batch_encryption, client_8002.batch_signature_required) == (
        "openpgp",
        False,
    )
    assert OpenPGPPlatformKey.objects.filter(client=client_8002).count() == 1
    run("set_batch_encryption", "8002", "openpgp")
    assert OpenPGPPlatformKey.objects.filter(client=client_8002).count() == 1


def test_a_signature_cannot_be_required_before_the_client_key_is_on_file(client_8002):
    with pytest.raises(CommandError) as failure:
        run("set_batch_encryption", "8002", "openpgp", "--require-signature")
    assert str(failure.value) == (
        "Client 8002 has no OpenPGP public key to check signatures with: "
        "import it first (openpgp_keys --import-client-key)."
    )
    client_8002.refresh_from_db()
    assert (client_8002.batch_encryption, client_8002.batch_signature_required) == ("7z", False)
    assert not OpenPGPPlatformKey.objects.filter(client=client_8002).exists()


def test_requiring_a_signature_then_choosing_7z_clears_the_requirement(
    client_8002, client_gpg, tmp_path
):
    client_gpg.new_key("bank <ops@bank.example>")
    key_file = tmp_path / "bank.asc"
    key_file.write_text(client_gpg.export("bank <ops@bank.example>"))
    run("openpgp_keys", "8002", "--import-client-key", str(key_file))

    out = run("set_batch_encryption", "8002", "openpgp", "--require-signature")

    assert out == "Client 8002's batch files: openpgp, signature required.\n"
    client_8002.refresh_from_db()
    assert client_8002.batch_signature_required
    run("set_batch_encryption", "8002", "7z")
    client_8002.refresh_from_db()
    assert (client_8002.batch_encryption, client_8002.batch_signature_required) == ("7z", False)


def test_openpgp_without_a_signature_flag_keeps_the_requirement_and_says_so(
    client_8002, client_gpg, tmp_path
):
    client_gpg.new_key("bank <ops@bank.example>")
    key_file = tmp_path / "bank.asc"
    key_file.write_text(client_gpg.export("bank <ops@bank.example>"))
    run("openpgp_keys", "8002", "--import-client-key", str(key_file))
    run("set_batch_encryption", "8002", "openpgp", "--require-signature")

    out = run("set_batch_encryption", "8002", "openpgp")

    assert out == "Client 8002's batch files: openpgp, signature required.\n"
    client_8002.refresh_from_db()
    assert client_8002.batch_signature_required
    out = run("set_batch_encryption", "8002", "openpgp", "--no-require-signature")
    assert out == "Client 8002's batch files: openpgp, signature not required.\n"
    client_8002.refresh_from_db()
    assert not client_8002.batch_signature_required
    run("set_batch_encryption", "8002", "openpgp")
    client_8002.refresh_from_db()
    assert not client_8002.batch_signature_required


def test_both_signature_flags_at_once_are_refused(client_8002):
    with pytest.raises(CommandError, match="not allowed with argument"):
        run(
            "set_batch_encryption",
            "8002",
            "openpgp",
            "--require-signature",
            "--no-require-signature",
        )


@pytest.mark.parametrize("flag", ["--require-signature", "--no-require-signature"])
def test_a_signature_flag_is_refused_for_7z_files(client_8002, flag):
    with pytest.raises(CommandError, match="applies to openpgp batch files only"):
        run("set_batch_encryption", "8002", "7z", flag)


def test_a_signature_cannot_be_required_of_7z_files(client_8002):
    with pytest.raises(CommandError, match="applies to openpgp batch files only"):
        run("set_batch_encryption", "8002", "7z", "--require-signature")


def test_set_batch_encryption_of_an_unknown_client(db):
    with pytest.raises(CommandError, match=r"Unknown client '9999'\."):
        run("set_batch_encryption", "9999", "none")
