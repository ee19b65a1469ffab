"""Choosing how a client's batch files are encrypted, with what the choice needs."""

from django.db import transaction

from batches.decryption import METHODS
from batches.models import OpenPGPClientKey
from batches.openpgp_keys import platform_key_ensure
from clients.models import Client


class BatchEncryptionError(Exception):
    """A choice refused; the message is one line saying why."""


@transaction.atomic
def batch_encryption_set(
    client: Client, method: str, *, require_signature: bool | None = False
) -> bool:
    """Set the client's batch method (and whether its files must be signed: openpgp only).

    ``require_signature`` None keeps the client's current requirement under openpgp (7z and
    none clear it). openpgp makes sure the client has a platform key for its files to be
    encrypted to; requiring a signature needs the client's public key to check it with.
    Returns whether a signature is now required.
    """
    if require_signature is None:
        require_signature = method == "openpgp" and client.batch_signature_required
    if method not in METHODS:
        raise BatchEncryptionError(f"{method} batch files are not available.")
    if require_signature and method != "openpgp":
        raise BatchEncryptionError("--require-signature applies to openpgp batch files only.")
    if method == "openpgp":
        if require_signature and not OpenPGPClientKey.objects.filter(client=client).exists():
            raise BatchEncryptionError(
                f"Client {client.client_id} has no OpenPGP public key to check signatures "
                "with: import it first (openpgp_keys --import-client-key)."
            )
        platform_key_ensure(client)
    client.batch_encryption = method
    client.batch_signature_required = require_signature
    client.save(update_fields=["batch_encryption", "batch_signature_required", "updated_at"])
    return require_signature
