"""The HMAC-SHA256 request signature of the real-time API.

Take every parameter except `signature`; percent-encode each name and value
as UTF-8 per RFC 3986 (A-Z a-z 0-9 - _ . ~ stay as they are, everything else
becomes %XX in upper-case hex); sort the pairs by encoded name; join each pair
as name=value and the pairs with "&". The signature is the lower-case hex
HMAC-SHA256 of that string, keyed with the UTF-8 bytes of the secret key.
"""

import hmac
import re
from collections.abc import Mapping
from urllib.parse import quote

SIGNATURE_PARAMETER = "signature"
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")


def percent_encode(text: str) -> str:
    # Most names and values are unreserved characters only: kept as they are, at a
    # third of quote()'s cost. quote() keeps exactly those when safe is empty.
    if _UNRESERVED.fullmatch(text):
        return text
    return quote(text, safe="", encoding="utf-8")


def string_to_sign(parameters: Mapping[str, str]) -> str:
    """The canonical string of `parameters` (the `signature` parameter left out)."""
    pairs = sorted(
        (percent_encode(name), percent_encode(value))
        for name, value in parameters.items()
        if name != SIGNATURE_PARAMETER
    )
    return "&".join([f"{name}={value}" for name, value in pairs])


def sign(parameters: Mapping[str, str], secret: str) -> str:
    """The lower-case hex signature of `parameters` under `secret`."""
    message = string_to_sign(parameters).encode("ascii")
    # hmac.digest: OpenSSL's one-shot HMAC, no HMAC object built in Python.
    return hmac.digest(secret.encode("utf-8"), message, "sha256").hex()


def signature_matches(parameters: Mapping[str, str], secret: str, signature: str) -> bool:
    """Whether `signature` (hex, either case) signs `parameters`; compared in constant time."""
    expected = sign(parameters, secret)
    return hmac.compare_digest(expected.encode("ascii"), signature.lower().encode("utf-8"))
