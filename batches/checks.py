"""System checks of the batch limits (run by `manage.py check`, and so by every
runserver, migrate and qcluster start), and the deploy check of the gateways' identity
(`check --deploy` only). The task queue's are kokatto_site.checks."""

from django.conf import settings
from django.core import checks

# Line numbers are stored in integer columns (Notification.batch_line, RejectedLine.line,
# Batch.checkpoint_line), whose largest value on PostgreSQL is this.
LINE_NUMBER_MAX = 2_147_483_647
# A gpg home's agent socket: OPENPGP_HOME_DIR + "/kokatto-gnupg-XXXXXXXX/S.gpg-agent.browser"
# (43 characters), within a socket path's 107.
OPENPGP_HOME_DIR_MAX_CHARS = 60


@checks.register(checks.Tags.compatibility)
def batch_limits_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The batch limits must be values a batch can work within."""
    problems = []
    if not 1 <= settings.BATCH_MAX_LINES <= LINE_NUMBER_MAX:
        problems.append(
            checks.Error(
                f"BATCH_MAX_LINES ({settings.BATCH_MAX_LINES}) is not from 1 to "
                f"{LINE_NUMBER_MAX:,}: line numbers are stored in integer columns.",
                id="batches.E002",
            )
        )
    for name in ("BATCH_MAX_FILE_BYTES", "BATCH_MAX_REJECTED_LINES"):
        if getattr(settings, name) < 0:
            problems.append(checks.Error(f"{name} is negative.", id="batches.E003"))
    if settings.OPENPGP_GPG_SECONDS >= settings.BATCH_LEASE_SECONDS:
        # One gpg run renews no lease: a slower one would be taken over by the next poll.
        problems.append(
            checks.Error(
                f"OPENPGP_GPG_SECONDS ({settings.OPENPGP_GPG_SECONDS}) is not below "
                f"BATCH_LEASE_SECONDS ({settings.BATCH_LEASE_SECONDS}): a batch still being "
                "decrypted would be taken over by another run.",
                hint="Set OPENPGP_GPG_SECONDS below BATCH_LEASE_SECONDS (or raise the lease).",
                id="batches.E005",
            )
        )
    if len(str(settings.OPENPGP_HOME_DIR)) > OPENPGP_HOME_DIR_MAX_CHARS:
        problems.append(
            checks.Error(
                f"OPENPGP_HOME_DIR ({settings.OPENPGP_HOME_DIR}) is longer than "
                f"{OPENPGP_HOME_DIR_MAX_CHARS} characters: gpg-agent's sockets inside the gpg "
                "homes made under it would pass the ~107 characters a socket's path may have.",
                hint="Choose a shorter directory, e.g. /dev/shm/kokatto-gnupg.",
                id="batches.E006",
            )
        )
    return problems


@checks.register(checks.Tags.security, deploy=True)
def gateway_identity_set_in_environment_check(
    app_configs=None, **kwargs
) -> list[checks.CheckMessage]:
    """In production the gateways' SSH host key and FTPS certificate must come from the
    environment: the same on every gateway machine, and kept when `var/` is not."""
    if settings.DEBUG:
        return []
    return [
        checks.Error(
            f"{name} was generated into {path} because the environment does not set it.",
            hint=f"Set {name} in the environment, the same on every gateway machine (to keep "
            "what clients pinned, set the file's content).",
            id="batches.E004",
        )
        for name, path in settings.GATEWAY_IDENTITY_READ_FROM_VAR.items()
    ]
