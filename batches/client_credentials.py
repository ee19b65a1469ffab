"""What a client's batch files need of its secrets, read from the database only when asked."""

from cryptography.fernet import InvalidToken

from batches.decryption import Credentials, CredentialUnavailable
from batches.models import OpenPGPClientKey
from batches.openpgp_keys import platform_keys_active
from clients.models import Client

SEVEN_ZIP_KEY_UNREADABLE = (
    "The platform cannot read this client's batch password; its operators are "
    "alerted. Support can reprocess the batch once it is fixed."
)
OPENPGP_KEY_UNREADABLE = (
    "The platform cannot read this client's OpenPGP private key; its operators are "
    "alerted. Support can reprocess the batch once it is fixed."
)
CLIENT_KEY_MISSING = (
    "The platform has no OpenPGP public key of this client, so it can neither check the "
    "file's signature nor encrypt a result back: upload your public key, then ask support "
    "to reprocess the batch."
)


class ClientCredentials(Credentials):
    """The client's batch password and OpenPGP keys, each read when a method asks for it."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def batch_password(self) -> str:
        try:
            return self.client.batch_password()
        except InvalidToken:
            raise CredentialUnavailable(
                "PASSWORD_UNREADABLE",
                SEVEN_ZIP_KEY_UNREADABLE,
                detail=self._unreadable("the batch password"),
            ) from None

    def openpgp_private_keys(self) -> list[str]:
        """All the platform keys not retired, newest first: a key rotated out still decrypts
        the uploads encrypted to it until an operator retires it."""
        keys = platform_keys_active(self.client)
        try:
            return [key.private_key() for key in keys]
        except InvalidToken:
            raise CredentialUnavailable(
                "OPENPGP_KEY_UNREADABLE",
                OPENPGP_KEY_UNREADABLE,
                detail=self._unreadable("an OpenPGP platform key"),
            ) from None

    def openpgp_client_key(self) -> str:
        key = OpenPGPClientKey.objects.filter(client=self.client).first()
        if key is None:
            raise CredentialUnavailable(
                "CLIENT_KEY_MISSING",
                CLIENT_KEY_MISSING,
                detail=f"client {self.client.client_id} has no OpenPGP public key on file",
            )
        return key.public_key

    def signature_required(self) -> bool:
        return self.client.batch_signature_required

    def _unreadable(self, what: str) -> str:
        return f"{what} of client {self.client.client_id} is opened by no FIELD_ENCRYPTION_KEY"
