"""`manage.py check --deploy` refuses secrets generated into var/ in production, and says
while stored secrets still need an old encryption key (or need one that is gone)."""

import os
import secrets
import subprocess
import sys

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import run_checks
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clients.models import SecretKey
from tests.clients.conftest import lost_key_token, rotate
from tests.factories import issue_key

SECRET_SETTINGS = ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DEBUG", "DATABASE_URL")


def manage_check_deploy(tmp_path, **variables) -> str:
    """Run `manage.py check --deploy` as an operator would, with a fresh var/ and an empty
    database; returns its output, with its exit status."""
    environment = {k: v for k, v in os.environ.items() if k not in SECRET_SETTINGS}
    environment.update(
        {
            "KOKATTO_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
            "DEBUG": "false",
            **variables,
        }
    )
    finished = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in finished.stderr, finished.stderr
    return f"exit {finished.returncode}\n{finished.stdout}{finished.stderr}"


def clients_messages(**kwargs) -> dict[str, str]:
    """The clients app's messages of a deploy check in this process (id -> message)."""
    messages = run_checks(include_deployment_checks=True, **kwargs)
    return {m.id: f"{m.msg} {m.hint}" for m in messages if m.id.startswith("clients.")}


def test_check_deploy_refuses_secrets_generated_into_var_when_debug_is_off(tmp_path):
    output = manage_check_deploy(tmp_path)

    assert output.startswith("exit 1")
    var = tmp_path / "var"
    assert f"(clients.E001) SECRET_KEY was generated into {var / 'secret_key'}" in output
    assert (
        f"(clients.E001) FIELD_ENCRYPTION_KEY was generated into {var / 'field_encryption.key'}"
        in output
    )


def test_check_deploy_accepts_secrets_set_in_the_environment(tmp_path):
    output = manage_check_deploy(
        tmp_path,
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEY=f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}",
    )

    assert "clients." not in output
    assert not (tmp_path / "var" / "secret_key").exists()


def test_generated_secrets_are_fine_with_debug_on(tmp_path):
    assert "clients." not in manage_check_deploy(tmp_path, DEBUG="true")


def test_check_deploy_with_the_database_down_warns_and_goes_on(tmp_path):
    output = manage_check_deploy(
        tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:1/kokatto_nowhere"
    )

    assert "(clients.W002) Could not count the secrets stored under old encryption keys" in output
    assert "(clients.E001)" in output  # the other checks still ran


def test_values_under_an_old_key_are_a_warning_until_rotated(
    encryption_keys, client_8002, client_8003
):
    issue_key(client_8002)
    issue_key(client_8003)
    client_8002.set_batch_password("zip-pass")
    client_8002.save()
    encryption_keys.configure(encryption_keys.new, encryption_keys.old)
    issue_key(client_8003)  # under the new key already

    warned = clients_messages()

    assert warned["clients.W001"] == (
        "Stored secrets are encrypted with a key other than the first of FIELD_ENCRYPTION_KEY: "
        "1 in clients_client.batch_password_encrypted, 2 in clients_secretkey.secret_encrypted. "
        "Run `python manage.py rotate_encryption_keys`; keep the old key configured until it "
        "reports none left."
    )
    rotate()
    assert "clients.W001" not in clients_messages()


def test_values_no_key_opens_are_an_error_naming_their_clients(encryption_keys, client_8003):
    key, _ = issue_key(client_8003)
    SecretKey.objects.filter(pk=key.pk).update(secret_encrypted=lost_key_token("gone"))

    error = clients_messages()["clients.E002"]

    assert "1 in clients_secretkey.secret_encrypted (clients 8003)" in error
    assert "Add the key they were encrypted with" in error


def test_the_check_before_migrate_says_nothing_of_stored_secrets(encryption_keys, client_8003):
    issue_key(client_8003)
    encryption_keys.configure(encryption_keys.new, encryption_keys.old)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE clients_secretkey RENAME TO clients_secretkey_not_yet")

    messages = clients_messages()

    assert {"clients.W001", "clients.W002", "clients.E002"}.isdisjoint(messages)


def test_a_plain_check_as_runserver_and_migrate_run_it_reads_no_stored_secret(
    encryption_keys, client_8003
):
    issue_key(client_8003)
    encryption_keys.configure(encryption_keys.new, encryption_keys.old)

    with CaptureQueriesContext(connection) as queries:
        messages = run_checks(databases=["default"])

    assert not [q["sql"] for q in queries.captured_queries if "clients_" in q["sql"]]
    assert not [m for m in messages if m.id.startswith("clients.")]
