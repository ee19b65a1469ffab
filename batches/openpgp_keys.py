"""OpenPGP keys per client: the platform's key pair and the client's own public key.

Every gpg operation runs in a throwaway GNUPGHOME (a fresh 0700 directory under
OPENPGP_HOME_DIR, a tmpfs by default, its gpg-agent stopped and the directory deleted when the
operation ends, or by gnupg_homes_sweep when the process died first): no key ring outlives an
operation, so the database is the only place keys are kept. The platform's private key is
generated without a passphrase inside that home because a passphrase would have to be stored
next to it anyway; it is exported armoured and kept encrypted at rest (EncryptedTextField),
like every other secret of the platform.

Batch files are decrypted and their results encrypted with these keys by the `openpgp`
method (batches/openpgp_decryption.py, through batches/gpg_process.py).
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import gnupg
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from batches.models import OpenPGPClientKey, OpenPGPPlatformKey
from clients.models import Client

logger = logging.getLogger(__name__)

HOME_PREFIX = "kokatto-gnupg-"
# A home untouched for OPENPGP_GPG_SECONDS and this long is a dead process's (swept).
HOME_SWEEP_MARGIN_SECONDS = 120
AGENT_KILL_SECONDS = 10
# OpenPGP public-key algorithm numbers (RFC 4880 9.1, RFC 6637, RFC 9580).
_RSA = {"1", "2", "3"}
_ECC = {"18", "19", "22", "25", "26", "27", "28"}
_PRIVATE_BLOCK = re.compile(r"-----BEGIN PGP PRIVATE KEY BLOCK-----")


class OpenPGPKeyError(Exception):
    """A key we refuse; the message is one line saying why."""


@contextmanager
def gnupg_home() -> Iterator[gnupg.GPG]:
    """A GPG driver on a fresh, private key ring, deleted (agent included) on exit."""
    home = gnupg_home_new()
    try:
        gpg = gnupg.GPG(gnupghome=str(home))
        gpg.encoding = "utf-8"  # python-gnupg's default is latin-1
        yield gpg
    finally:
        _gnupg_home_remove(home)


def gnupg_home_new() -> Path:
    """A new 0700 home under OPENPGP_HOME_DIR (made private to us on first use)."""
    root = Path(settings.OPENPGP_HOME_DIR)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    status = root.lstat()
    # Under /dev/shm anyone may have made it first: use it only if it is ours and private.
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
        raise RuntimeError(f"{root} (OPENPGP_HOME_DIR) is not a directory of this user")
    if stat.S_IMODE(status.st_mode) & 0o077:
        root.chmod(0o700)
    return Path(tempfile.mkdtemp(prefix=HOME_PREFIX, dir=root))


def gnupg_homes_sweep() -> list[Path]:
    """Remove the homes a killed process left under OPENPGP_HOME_DIR (their agents stopped):
    each holds a client's platform private keys, without passphrase.

    A home older than OPENPGP_GPG_SECONDS and a margin is no live operation's: every gpg run
    touches its home when it starts (gpg_run) and is killed past that deadline.
    """
    root = Path(settings.OPENPGP_HOME_DIR)
    oldest = time.time() - settings.OPENPGP_GPG_SECONDS - HOME_SWEEP_MARGIN_SECONDS
    removed = []
    for home in root.glob(f"{HOME_PREFIX}*") if root.is_dir() else []:
        try:
            stale = home.lstat().st_mtime < oldest
        except FileNotFoundError:  # its own operation ended meanwhile
            continue
        if stale:
            logger.warning("Removing %s, a gpg home left by a process that died", home)
            _gnupg_home_remove(home)
            removed.append(home)
    return removed


def _gnupg_home_remove(home: Path) -> None:
    """Stop the home's gpg-agent (before its sockets' directory goes), then delete it."""
    try:
        subprocess.run(  # noqa: S603
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],  # noqa: S607
            capture_output=True,
            check=False,
            timeout=AGENT_KILL_SECONDS,
        )
    except subprocess.TimeoutExpired:
        logger.warning("gpgconf --kill gpg-agent timed out for %s", home)
    shutil.rmtree(home, ignore_errors=True)


def generate_key_pair(user_id: str) -> tuple[str, str, str]:
    """A new Ed25519 (signing) + Curve25519 (encryption) key pair, no expiry.

    Returns (armoured private key, armoured public key, fingerprint).
    """
    with gnupg_home() as gpg:
        key_input = gpg.gen_key_input(
            key_type="EDDSA",
            key_curve="ed25519",
            key_usage="sign",
            subkey_type="ECDH",
            subkey_curve="cv25519",
            subkey_usage="encrypt",
            name_real=user_id,
            name_email="batches@kokatto.invalid",
            expire_date=0,
            no_protection=True,
        )
        key = gpg.gen_key(key_input)
        if not key.fingerprint:
            raise RuntimeError(f"gpg could not generate a key: {key.stderr[-500:]}")
        private = gpg.export_keys(key.fingerprint, secret=True, expect_passphrase=False)
        public = gpg.export_keys(key.fingerprint)
        return private, public, key.fingerprint


def check_client_public_key(armoured: str) -> str:
    """The fingerprint of a client's public key; OpenPGPKeyError (one line) if unusable.

    Exactly one public key, no secret material, able to encrypt, RSA of OPENPGP_MIN_RSA_BITS
    (2048) or more or elliptic-curve keys throughout.
    """
    if len(armoured.encode()) > settings.OPENPGP_MAX_KEY_BYTES:
        raise OpenPGPKeyError(
            f"The key file is larger than {settings.OPENPGP_MAX_KEY_BYTES} bytes: "
            "send only the public key."
        )
    if _PRIVATE_BLOCK.search(armoured):
        raise OpenPGPKeyError("This is a secret key: send only the public key.")
    with gnupg_home() as gpg:
        keys = list(gpg.scan_keys_mem(armoured))
    if not keys:
        raise OpenPGPKeyError("No OpenPGP public key found in the file.")
    if any(key["type"] == "sec" for key in keys):
        raise OpenPGPKeyError("This is a secret key: send only the public key.")
    if len(keys) > 1:
        raise OpenPGPKeyError(f"The file holds {len(keys)} keys: send exactly one.")
    key = keys[0]
    # The primary key's capital letters are the whole key's usable capabilities (gpg leaves
    # out expired and revoked subkeys).
    if "E" not in key["cap"]:
        raise OpenPGPKeyError("The key cannot encrypt (no valid encryption subkey).")
    for part in [key, *key["subkey_info"].values()]:
        algo, bits = part["algo"], int(part["length"] or 0)
        if algo in _RSA and bits < settings.OPENPGP_MIN_RSA_BITS:
            raise OpenPGPKeyError(
                f"RSA keys need at least {settings.OPENPGP_MIN_RSA_BITS} bits; this has {bits}."
            )
        if algo not in _RSA | _ECC:
            raise OpenPGPKeyError(f"Unsupported key algorithm {algo}: use RSA or ECC keys.")
    return key["fingerprint"]


def platform_key_current(client: Client) -> OpenPGPPlatformKey | None:
    """The client's current platform key: the newest one not retired."""
    return (
        OpenPGPPlatformKey.objects.filter(client=client, retired_at__isnull=True)
        .order_by("-created_at", "-pk")
        .first()
    )


@transaction.atomic
def platform_key_ensure(client: Client, *, by=None) -> OpenPGPPlatformKey:
    """The client's current platform key, generated (by `by`, a user or None) when there is none."""
    _client_lock(client)  # one generator at a time
    key = platform_key_current(client)
    if key is not None:
        return key
    return _platform_key_new(client, by=by)


def client_key_set(client: Client, armoured: str, *, uploaded_by=None) -> OpenPGPClientKey:
    """Check and store the client's own public key, replacing the previous one."""
    fingerprint = check_client_public_key(armoured)
    key, _ = OpenPGPClientKey.objects.update_or_create(
        client=client,
        defaults={
            "public_key": armoured,
            "fingerprint": fingerprint,
            "uploaded_at": timezone.now(),
            "uploaded_by": uploaded_by,
        },
    )
    return key


# --- Key management by operators: rotation, retirement; client keys from a file ------------


def _client_lock(client: Client) -> None:
    """Lock the client's row until the transaction ends: its keys change one at a time."""
    Client.objects.select_for_update().filter(pk=client.pk).first()


def _platform_key_new(client: Client, *, by) -> OpenPGPPlatformKey:
    private, public, fingerprint = generate_key_pair(
        f"Kokatto batches for client {client.client_id}"
    )
    key = OpenPGPPlatformKey(
        client=client, public_key=public, fingerprint=fingerprint, created_by=by
    )
    key.set_private_key(private)
    key.save()
    return key


def platform_keys_active(client: Client):
    """The client's platform keys that still decrypt uploads (not retired), newest first."""
    return OpenPGPPlatformKey.objects.filter(client=client, retired_at__isnull=True).order_by(
        "-created_at", "-pk"
    )


@transaction.atomic
def platform_key_rotate(client: Client, *, by=None) -> OpenPGPPlatformKey:
    """A new current platform key for the client, generated by `by` (a user; None: a command).

    The older keys stay active, so files the client still encrypts to them decrypt, until an
    operator retires them once the client has imported the new public key.
    """
    _client_lock(client)
    return _platform_key_new(client, by=by)


@transaction.atomic
def platform_key_retire(key: OpenPGPPlatformKey, *, by=None) -> OpenPGPPlatformKey:
    """Retire an older platform key: it no longer decrypts uploads. OpenPGPKeyError if refused.

    The current key is never retired (the client encrypts to it; a rotation replaces it), so
    the client always keeps one active key.
    """
    _client_lock(key.client)
    key = OpenPGPPlatformKey.objects.select_related("client").get(pk=key.pk)  # as locked
    if key.retired_at is not None:
        raise OpenPGPKeyError(f"The key {fingerprint_grouped(key.fingerprint)} is already retired.")
    current = platform_key_current(key.client)
    if platform_keys_active(key.client).count() == 1:
        raise OpenPGPKeyError(
            f"Client {key.client.client_id}'s only active key cannot be retired: uploads would "
            "have no key to decrypt with; rotate first."
        )
    if current is not None and current.pk == key.pk:
        raise OpenPGPKeyError(
            "The current key cannot be retired: the client encrypts to it; rotate first."
        )
    key.retired_at = timezone.now()
    key.retired_by = by
    key.save(update_fields=["retired_at", "retired_by"])
    return key


def platform_key_by_fingerprint(client: Client, fingerprint: str) -> OpenPGPPlatformKey:
    """The client's platform key with this fingerprint (spaces and case ignored)."""
    wanted = re.sub(r"\s+", "", fingerprint).upper()
    key = OpenPGPPlatformKey.objects.filter(client=client, fingerprint=wanted).first()
    if key is None:
        raise OpenPGPKeyError(f"Client {client.client_id} has no platform key {fingerprint}.")
    return key


def fingerprint_grouped(fingerprint: str) -> str:
    """ "ABCD 1234 …": the fingerprint in groups of four, as gpg shows it to people."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


def _crc24(data: bytes) -> int:
    """The checksum of ASCII armour (RFC 4880 6.1)."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def key_file_armoured(data: bytes) -> str:
    """A key file's text for check_client_public_key: armoured as is, or a binary (.gpg) key
    armoured here (so what is stored is always text). OpenPGPKeyError if neither.

    No gpg runs on the binary here: check_client_public_key then refuses secret keys, several
    keys and bad algorithms alike for both forms.
    """
    if len(data) > settings.OPENPGP_MAX_KEY_BYTES:
        raise OpenPGPKeyError(
            f"The key file is larger than {settings.OPENPGP_MAX_KEY_BYTES} bytes: "
            "send only the public key."
        )
    if data.lstrip().startswith(b"-----BEGIN PGP"):
        try:
            return data.decode("ascii")
        except UnicodeDecodeError:
            raise OpenPGPKeyError("The armoured key has non-ASCII characters.") from None
    if not data or not data[0] & 0x80:  # every OpenPGP packet's first byte has its top bit set
        raise OpenPGPKeyError("No OpenPGP public key found in the file.")
    checksum = base64.b64encode(_crc24(data).to_bytes(3, "big")).decode()
    body = base64.encodebytes(data).decode()
    return (
        f"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{body}={checksum}\n"
        "-----END PGP PUBLIC KEY BLOCK-----\n"
    )


def client_key_describe(armoured: str) -> dict:
    """What a person confirms before a client key is stored: fingerprint, algorithm and size,
    user ids, creation date. Checks the key first (OpenPGPKeyError, one line)."""
    fingerprint = check_client_public_key(armoured)
    with gnupg_home() as gpg:
        [key] = gpg.scan_keys_mem(armoured)
    subkeys = [
        {"algorithm": _algorithm_name(part), "capabilities": part.get("cap", "")}
        for part in key["subkey_info"].values()
    ]
    return {
        "fingerprint": fingerprint,
        "fingerprint_grouped": fingerprint_grouped(fingerprint),
        "algorithm": _algorithm_name(key),
        "subkeys": subkeys,
        "user_ids": list(key["uids"]),
        "created": datetime.fromtimestamp(int(key["date"]), tz=UTC),
    }


_ALGORITHM_NAMES = {"1": "RSA", "2": "RSA", "3": "RSA", "16": "ElGamal", "17": "DSA"}
_ALGORITHM_NAMES |= {"18": "ECDH", "19": "ECDSA", "22": "EdDSA", "25": "X25519", "27": "Ed25519"}


def _algorithm_name(part: dict) -> str:
    """ "RSA 3072" or "EdDSA ed25519": the algorithm with its size or curve."""
    name = _ALGORITHM_NAMES.get(part["algo"], f"algorithm {part['algo']}")
    curve = part.get("curve")
    return f"{name} {curve}" if curve else f"{name} {part['length']}"
