"""Creating clients and setting their batch passwords, for operators' scripts and the admin."""

from django.core.exceptions import ValidationError
from django.db import transaction

from clients.models import Client


class OnboardingError(Exception):
    """Bad input from an operator; the message is one line saying why."""


def client_get(*, client_id: str, require_active: bool = True) -> Client:
    """Return the client with this clientId; raises OnboardingError if unknown or inactive."""
    try:
        client = Client.objects.get(client_id=client_id)
    except Client.DoesNotExist:
        raise OnboardingError(f"Unknown client {client_id!r}.") from None
    if require_active and not client.is_active:
        raise OnboardingError(f"Client {client_id} is inactive.")
    return client


@transaction.atomic
def client_create(*, client_id: str, name: str) -> tuple[Client, bool]:
    """Create the client, or bring an existing one's name up to date.

    Idempotent, so onboarding scripts can be re-run. Returns (client, created).
    Raises OnboardingError for an invalid clientId or an empty name.
    """
    if not name.strip():
        raise OnboardingError("A client needs a name.")
    client = Client.objects.select_for_update().filter(client_id=client_id).first()
    created = client is None
    if created:
        client = Client(client_id=client_id, name=name.strip())
    elif client.name == name.strip():
        return client, False
    client.name = name.strip()
    try:
        client.full_clean()
    except ValidationError as exc:
        raise OnboardingError(_one_line(exc)) from None
    client.save()
    return client, created


def client_set_batch_password(*, client: Client, password: str) -> None:
    """Store the client's batch archive password, encrypted. Raises OnboardingError if empty."""
    if not password:
        raise OnboardingError("The batch password is empty.")
    client.set_batch_password(password)
    client.save(update_fields=["batch_password_encrypted", "updated_at"])


def _one_line(exc: ValidationError) -> str:
    return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
