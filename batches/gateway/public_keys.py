"""OpenSSH public key lines, parsed and judged strong enough for a gateway account."""

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from django.core.exceptions import ValidationError

RSA_MIN_BITS = 2048
ACCEPTED_TYPES = "ed25519, ECDSA (nistp256/384/521) or RSA of at least 2048 bits"


@dataclass(frozen=True)
class PublicKey:
    key_type: str  # as written in the line, e.g. "ssh-ed25519"
    blob: bytes  # the key in SSH wire format, as an SSH client presents it
    comment: str

    @property
    def fingerprint(self) -> str:
        return blob_fingerprint(self.blob)

    def line(self) -> str:
        return " ".join(
            part
            for part in (self.key_type, base64.b64encode(self.blob).decode(), self.comment)
            if part
        )


def blob_fingerprint(blob: bytes) -> str:
    """The SHA-256 fingerprint OpenSSH prints (`ssh-keygen -lf`): SHA256:<base64, unpadded>."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def public_key_parse(text: str) -> PublicKey:
    """One OpenSSH public key line ("type base64 [comment]"); ValidationError saying why not."""
    parts = text.strip().split(None, 2)
    if len(parts) < 2:
        raise ValidationError(
            "Not an OpenSSH public key line: expected 'type key [comment]', "
            "as in the .pub file ssh-keygen writes."
        )
    key_type, encoded = parts[0], parts[1]
    try:
        blob = base64.b64decode(encoded, validate=True)
        key = load_ssh_public_key(f"{key_type} {encoded}".encode())
    except (ValueError, binascii.Error, TypeError) as error:
        raise ValidationError(f"The public key cannot be read ({error}).") from None
    except Exception as error:  # cryptography's UnsupportedAlgorithm
        raise ValidationError(
            f"Key type {key_type!r} is not accepted ({error}); use {ACCEPTED_TYPES}."
        ) from None
    _check_strength(key, key_type)
    return PublicKey(
        key_type=key_type, blob=blob, comment=parts[2].strip() if len(parts) > 2 else ""
    )


def _check_strength(key, key_type: str) -> None:
    if isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        return
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < RSA_MIN_BITS:
            raise ValidationError(
                f"The RSA key has {key.key_size} bits; at least {RSA_MIN_BITS} are required."
            )
        return
    raise ValidationError(f"Key type {key_type!r} is not accepted; use {ACCEPTED_TYPES}.")
