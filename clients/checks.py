"""Deploy checks of the platform's own secrets (`manage.py check --deploy`).

Registered with deploy=True: `runserver`, `migrate`, `qcluster` and the test
runner never run them, so the survey of stored secrets (a database query)
costs nothing outside a deploy check. It reads at most CHECK_SCAN_LIMIT values
per encrypted column (an index scan in primary-key order) and tries one or two
Fernet keys on each, a few microseconds a value: there are a few secrets per
client, so it examines them all; with millions it would stop at the limit and
say "at least".
"""

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connection

from clients.encryption import encrypted_columns
from clients.key_rotation import CHECK_SCAN_LIMIT, ColumnCounts, encryption_keys_survey

# What depends on the generated value, and how to keep it.
_KEEP = {
    "SECRET_KEY": "Sessions and password-reset links made with the generated one end when "
    "it changes: to keep them, set the file's content.",
    "FIELD_ENCRYPTION_KEY": "Secrets stored so far are encrypted with the generated key: "
    "set a new key followed by the file's content (new,old), run rotate_encryption_keys, "
    "then drop the old one.",
}


@checks.register(checks.Tags.security, deploy=True)
def secrets_set_in_environment_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """In production each machine must share the secrets, and they must outlive `var/`."""
    if settings.DEBUG:
        return []
    return [
        checks.Error(
            f"{name} was generated into {path} because the environment does not set it.",
            hint=f"Set {name} in the environment, the same on every machine. {_KEEP[name]}",
            id="clients.E001",
        )
        for name, path in settings.SECRETS_READ_FROM_VAR.items()
    ]


@checks.register(checks.Tags.security, deploy=True)
def stored_secrets_keys_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Values under a non-first key keep the old key needed; values under no key are lost."""
    try:
        tables = set(connection.introspection.table_names())
    except DatabaseError as exc:
        return [
            checks.Warning(
                f"Could not count the secrets stored under old encryption keys: the "
                f"database cannot be reached ({type(exc).__name__}).",
                id="clients.W002",
            )
        ]
    if not all(column.model._meta.db_table in tables for column in encrypted_columns()):
        return []  # not migrated yet: nothing is stored
    surveys = encryption_keys_survey()
    messages = []
    old_key = [f"{_counted(s, s.reencrypted)} in {s.label}" for s in surveys if s.reencrypted]
    if old_key:
        messages.append(
            checks.Warning(
                f"Stored secrets are encrypted with a key other than the first of "
                f"FIELD_ENCRYPTION_KEY: {', '.join(old_key)}.",
                hint="Run `python manage.py rotate_encryption_keys`; keep the old key "
                "configured until it reports none left.",
                id="clients.W001",
            )
        )
    unreadable = [
        f"{_counted(s, len(s.unreadable))} in {s.label} "
        f"(clients {', '.join(sorted({v.client_id for v in s.unreadable}))})"
        for s in surveys
        if s.unreadable
    ]
    if unreadable:
        messages.append(
            checks.Error(
                f"Stored secrets can be opened by no key of FIELD_ENCRYPTION_KEY: "
                f"{', '.join(unreadable)}. Those clients' API requests, batches and "
                "callbacks fail.",
                hint="Add the key they were encrypted with (last) to FIELD_ENCRYPTION_KEY, "
                "or replace those secrets (a new secret key, a new batch password).",
                id="clients.E002",
            )
        )
    return messages


def _counted(survey: ColumnCounts, count: int) -> str:
    """`count`, or "at least `count`" when the survey stopped at its limit."""
    examined = survey.current + survey.reencrypted + len(survey.unreadable)
    return f"at least {count}" if examined >= CHECK_SCAN_LIMIT else str(count)
