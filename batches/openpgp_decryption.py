"""The "openpgp" method: batch files as OpenPGP messages, decrypted and verified by gpg as a stream.

An upload is an OpenPGP message (binary, or ASCII-armoured) encrypted to one of the client's
platform keys not retired, and signed by the client's own key when the client requires it.
Its first packets are read before gpg runs, so a plain file or a signed-only one is refused
(NOT_ENCRYPTED) before any plaintext is written, and a message encrypted with a passphrase only
(WRONG_KEY) before gpg would ask for one. Then gpg decrypts into the scratch file, counted
against the limits as it comes (gpg is killed past them), and its status lines give the
verdict. What gpg wrote is provisional until it ended: the plaintext is yielded only after
``DECRYPTION_OKAY``, integrity protection present and checked (``GOODMDC``, or AEAD), the
signature judged and exit code 0.

Signatures: a file that carries a signature must carry a good one by the client's key on file,
required or not (BAD_SIGNATURE otherwise: a signature that does not verify means the file was
altered or forged, and one by another key means the client signs with a key we do not hold,
which it should upload). A client with ``batch_signature_required`` must sign every file.

Results go back encrypted to the client's key and signed by the platform's current key, armoured
when the upload was (its first bytes are an armour header), as ``<name>.result.csv.asc``,
otherwise binary as ``<name>.result.csv.pgp``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from batches.decryption import (
    BatchFileError,
    Credentials,
    CredentialUnavailable,
    ErrorCode,
    ExtractingDecryption,
    Limits,
    _PlaintextSink,
    _safe_member_name,
    register,
)
from batches.gpg_process import GpgRun, gpg_import, gpg_run
from batches.openpgp_keys import gnupg_home

_HEAD_BYTES = 8 * 1024
_ARMOUR = b"-----BEGIN PGP "
_ARMOURED_MESSAGE = b"-----BEGIN PGP MESSAGE-----"
_CLEARSIGNED = b"-----BEGIN PGP SIGNED MESSAGE-----"
# OpenPGP packet tags (RFC 4880 4.3).
_PUBLIC_KEY_ESK, _SYMMETRIC_ESK, _MARKER = 1, 3, 10
_SESSION_KEYS = {_PUBLIC_KEY_ESK, _SYMMETRIC_ESK}
# Symmetrically encrypted data, with integrity protection (MDC), AEAD (RFC 9580, LibrePGP).
_ENCRYPTED_DATA = {9, 18, 20}
_SIGNED_OR_PLAIN = {2, 4, 8, 11}  # signature, one-pass signature, compressed, literal data
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
# The signature statuses gpg gives instead of GOODSIG: each refuses the file.
_UNACCEPTABLE_SIGNATURES = {
    "BADSIG": "the file's signature does not match its content (altered, or forged)",
    "ERRSIG": "the file is signed by a key that is not the client's key on file",
    "EXPSIG": "the file's signature has expired",
    "EXPKEYSIG": "the file is signed by the client's key, which has expired",
    "REVKEYSIG": "the file is signed by the client's key, which is revoked",
}


class _NotOpenPGP(ValueError):
    pass


@register
class OpenPGPDecryption(ExtractingDecryption):
    """An OpenPGP message encrypted to the client's platform key, signed by the client's."""

    name = "openpgp"
    result_suffix = ".csv.pgp"

    def extract(
        self, packed: Path, plaintext_path: Path, *, credentials: Credentials, limits: Limits
    ) -> None:
        with packed.open("rb") as head:
            _check_first_packets(head.read(_HEAD_BYTES))
        _decrypt(packed, plaintext_path, credentials=credentials, limits=limits)

    def wrap_result(
        self,
        plaintext_path: Path,
        member_name: str,
        *,
        credentials: Credentials,
        destination: BinaryIO,
        upload_head: bytes = b"",
    ) -> None:
        """Encrypted to the client's key, signed by the platform's current key (the newest)."""
        client_key = credentials.openpgp_client_key()
        signing_key = credentials.openpgp_private_keys()[:1]
        if not signing_key:  # all retired: nothing to sign with, no result rather than unsigned
            raise CredentialUnavailable(
                "OPENPGP_KEY_MISSING",
                "The platform has no OpenPGP key in use for this client.",
                detail="no platform OpenPGP key in use to sign the result with",
            )
        armour = ["--armor"] if is_armoured(upload_head) else []
        seconds = settings.OPENPGP_GPG_SECONDS
        with gnupg_home() as gpg:
            recipient = gpg_import(gpg.gnupghome, client_key, seconds=seconds)
            signer = gpg_import(gpg.gnupghome, signing_key[0], seconds=seconds)
            run = gpg_run(
                gpg.gnupghome,
                [
                    *armour,
                    "--encrypt",
                    "--sign",
                    "--recipient",
                    recipient,
                    "--local-user",
                    signer,
                    "--set-filename",
                    _safe_member_name(member_name),
                    "--output",
                    "-",
                    str(plaintext_path),
                ],
                seconds=seconds,
                on_output=destination.write,
            )
        if run.returncode != 0 or not run.has("END_ENCRYPTION") or not run.has("SIG_CREATED"):
            raise RuntimeError(f"gpg could not encrypt the result: {run.detail}")

    def result_ending(self, upload_head: bytes = b"") -> str:
        return ".csv.asc" if is_armoured(upload_head) else ".csv.pgp"


def is_armoured(head: bytes) -> bool:
    """Whether a file starting with ``head`` is ASCII-armoured (a UTF-8 BOM and blank space
    before the armour header are allowed, as gpg allows them)."""
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(_ARMOUR)


def _check_first_packets(head: bytes) -> None:
    """Refuse, from the file's first bytes, what is no message encrypted to a key.

    Whatever is not recognisably an encrypted message (session-key packets, then the
    encrypted data) is NOT_ENCRYPTED and deleted: it may be plaintext in any encoding, and
    the client keeps its own copy. A real message damaged further on is for gpg to find.
    """
    tags = _first_packet_tags(head)
    while tags and tags[0] == _MARKER:
        tags.pop(0)
    if not tags or tags[0] not in _SESSION_KEYS:
        if tags and tags[0] in _SIGNED_OR_PLAIN:
            raise _not_encrypted("the file is OpenPGP data that is signed or packed, not encrypted")
        raise _not_encrypted("the file is not an OpenPGP encrypted message")
    session_keys = list(itertools.takewhile(lambda tag: tag in _SESSION_KEYS, tags))
    following = tags[len(session_keys) :]
    if following and following[0] not in _ENCRYPTED_DATA:
        raise _not_encrypted(
            "the file's session keys are followed by no encrypted data (its content is in "
            "the clear)"
        )
    if _PUBLIC_KEY_ESK not in session_keys and following:
        raise _symmetric_only()


def _first_packet_tags(head: bytes) -> list[int]:
    """The tags of the packets that start within ``head`` (armour removed); NOT_ENCRYPTED for
    anything that is no OpenPGP message (plain text in any encoding, other bytes)."""
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if body.startswith(_CLEARSIGNED):
        raise _not_encrypted("the file is a clear-signed OpenPGP message, not an encrypted one")
    if body.startswith(_ARMOUR):
        if not body.startswith(_ARMOURED_MESSAGE):
            raise _not_encrypted(
                "the file is an armoured OpenPGP key or signature, not an encrypted message"
            )
        body = _armour_body(body)
    elif _reads_as_text(head):
        raise _not_encrypted("the file is plain text, not an OpenPGP message")
    try:
        return _packet_tags(body)
    except _NotOpenPGP:
        raise _not_encrypted("the file is not an OpenPGP encrypted message") from None


def _armour_body(armoured: bytes) -> bytes:
    """The first bytes of an armoured message's packets: base64 after the header lines."""
    lines = armoured.replace(b"\r", b"").split(b"\n")[1:-1]  # the last may be cut short
    try:
        blank = lines.index(b"")  # armour headers ("Version: ...") end at a blank line
    except ValueError:
        blank = -1
    encoded = b"".join(line.strip() for line in lines[blank + 1 :] if not line.startswith(b"="))
    encoded = encoded.split(b"-----", 1)[0]
    try:
        return base64.b64decode(encoded[: len(encoded) // 4 * 4], validate=True)
    except binascii.Error:
        raise _not_encrypted("the file's armour is no OpenPGP message (invalid base64)") from None


def _reads_as_text(head: bytes) -> bool:
    """No control characters but tab, CR and LF in the first bytes, in whatever encoding:
    an OpenPGP packet's header holds some (its version, a length) within its first bytes."""
    sample = head[:512]
    return bool(sample) and len(sample.translate(None, _CONTROL_BYTES)) == len(sample)


def _packet_tags(data: bytes) -> list[int]:
    """Tags of the packets starting in ``data``, stopping at a length it cannot skip."""
    tags, position = [], 0
    while position < len(data):
        first = data[position]
        if not first & 0x80:
            raise _NotOpenPGP
        if first & 0x40:  # new format
            tags.append(first & 0x3F)
            length, size = _new_length(data, position + 1)
        else:  # old format: the length's size is in the tag byte
            tags.append((first >> 2) & 0x0F)
            length_type = first & 0x03
            if length_type == 3:
                break  # indeterminate: to the end of the file
            size = 1 << length_type
            length = int.from_bytes(data[position + 1 : position + 1 + size], "big")
        if length is None:
            break
        position += 1 + size + length
    return tags


def _new_length(data: bytes, at: int) -> tuple[int | None, int]:
    """A new-format packet's body length and the size of its length field; None for a
    partial body length (a data packet, which ends the session keys anyway)."""
    if at >= len(data):
        return None, 0
    first = data[at]
    if first < 192:
        return first, 1
    if first < 224:
        return ((first - 192) << 8) + data[at + 1] + 192 if at + 1 < len(data) else None, 2
    if first == 255:
        return int.from_bytes(data[at + 1 : at + 5], "big"), 5
    return None, 1


def _not_encrypted(what: str) -> BatchFileError:
    return BatchFileError(
        ErrorCode.NOT_ENCRYPTED,
        f"{what}: batch files must be OpenPGP messages encrypted to the platform's key for "
        "this client",
    )


def _symmetric_only() -> BatchFileError:
    return BatchFileError(
        ErrorCode.WRONG_KEY,
        "the file is encrypted with a passphrase only (gpg --symmetric): encrypt it to the "
        "platform's public key for this client (gpg --encrypt --recipient)",
    )


def _decrypt(message: Path, plaintext_path: Path, *, credentials: Credentials, limits: Limits):
    """Decrypt and verify ``message`` into ``plaintext_path``, or raise BatchFileError."""
    client_key = credentials.openpgp_client_key()  # CLIENT_KEY_MISSING before any decryption
    private_keys = credentials.openpgp_private_keys()
    required = credentials.signature_required()
    seconds = settings.OPENPGP_GPG_SECONDS
    with gnupg_home() as gpg:
        client_fingerprint = gpg_import(gpg.gnupghome, client_key, seconds=seconds)
        platform_fingerprints = [
            gpg_import(gpg.gnupghome, key, seconds=seconds) for key in private_keys
        ]
        with plaintext_path.open("wb") as out:
            sink = _PlaintextSink(out, limits.budget(message.stat().st_size), 0, limits.max_lines)
            run = gpg_run(
                gpg.gnupghome,
                ["--decrypt", "--output", "-", str(message)],
                seconds=seconds,
                on_output=sink.write,
            )
    _check_decrypted(run, platform_fingerprints)
    _check_signatures(run, client_fingerprint, required=required)
    if run.returncode != 0:
        raise _damaged(run, "gpg could not process it")


def _check_decrypted(run: GpgRun, platform_fingerprints: list[str]) -> None:
    """WRONG_KEY or CORRUPT_ARCHIVE unless gpg decrypted it all and its integrity checked."""
    if run.status_overflow:
        raise _damaged(run, "it holds far more packets than a batch file")
    if run.has("PLAINTEXT") and not run.has("BEGIN_DECRYPTION"):  # a literal packet in the clear
        raise _not_encrypted("the file holds data in the clear, not only encrypted data")
    if not run.has("DECRYPTION_KEY"):
        if run.has("NEED_PASSPHRASE_SYM") and not run.has("ENC_TO"):
            raise _symmetric_only()
        if run.has("ENC_TO") or run.has("NO_SECKEY"):
            to = ", ".join(args[0] for args in run.args("ENC_TO")) or "unknown keys"
            ours = ", ".join(platform_fingerprints) or "none"
            raise BatchFileError(
                ErrorCode.WRONG_KEY,
                f"the file is encrypted to key(s) {to}, none of them a platform key of this "
                f"client (platform keys in use: {ours}); encrypt it to the platform's current "
                "public key",
                detail=run.detail,
            )
        raise _damaged(run, "no session key could be read")
    for args in run.args("DECRYPTION_INFO"):
        mdc, aead = args[0], args[2] if len(args) > 2 else "0"
        if mdc == "0" and aead == "0":
            raise BatchFileError(
                ErrorCode.CORRUPT_ARCHIVE,
                "the file has no integrity protection (no MDC or AEAD), so damage or tampering "
                "could not be detected: encrypt it with a current OpenPGP program (gpg 2.2 or "
                "later does so by default)",
                detail=run.detail,
            )
    protected = run.has("GOODMDC") or any(
        len(args) > 2 and args[2] != "0" for args in run.args("DECRYPTION_INFO")
    )
    failed = run.has("DECRYPTION_FAILED") or run.has("BADMDC")
    if failed or not run.has("DECRYPTION_OKAY") or not protected:
        raise _damaged(run, "it did not decrypt to its end with its integrity checked")


def _check_signatures(run: GpgRun, client_fingerprint: str, *, required: bool) -> None:
    """BAD_SIGNATURE for a signature that is not a good one by the client's key, and for a
    file without one when the client requires it."""
    for keyword, message in _UNACCEPTABLE_SIGNATURES.items():
        if run.has(keyword):
            raise BatchFileError(ErrorCode.BAD_SIGNATURE, message, detail=run.detail)
    signers = {args[9] if len(args) > 9 else args[0] for args in run.args("VALIDSIG")}
    if len(run.args("GOODSIG")) != len(run.args("VALIDSIG")) or signers - {client_fingerprint}:
        raise BatchFileError(
            ErrorCode.BAD_SIGNATURE,
            _UNACCEPTABLE_SIGNATURES["ERRSIG"],
            detail=run.detail,
        )
    if required and not signers:
        raise BatchFileError(
            ErrorCode.BAD_SIGNATURE,
            f"the file is not signed: this client's files must be signed with its key "
            f"{client_fingerprint} (gpg --encrypt --sign)",
        )


def _damaged(run: GpgRun, why: str) -> BatchFileError:
    return BatchFileError(
        ErrorCode.CORRUPT_ARCHIVE,
        f"the file is damaged or truncated: {why}",
        detail=run.detail,
    )
