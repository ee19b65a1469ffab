"""Where the platform may send a request that a client chose: its status callbacks.

A client's callback URL is the client's data. Called as given it would let client
staff reach the platform's private network (Redis on 127.0.0.1, the cloud metadata
service, an internal admin) and read the outcome back as a port scanner. So:

- the URL must be https (plain http only when CLIENT_CALLBACK_ALLOW_HTTP, for
  development), and a literal address in it must be public: checked when the URL is
  saved, and again when a callback is sent (`callback_url_refusal`);
- when a callback is sent, its host name is resolved once, every address it resolves
  to must be allowed (`address_refusal`), and the connection is made to a checked
  address (notifications/backends/http.py), never after a second DNS answer.

Public means a global unicast address: no loopback, private, link-local, multicast,
reserved, unspecified or shared (100.64.0.0/10) address, in IPv4 or IPv6, including
the IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4, NAT64).
OUTBOUND_ALLOWED_NETWORKS lets callbacks reach more networks (a partner's private
link), OUTBOUND_DENIED_NETWORKS takes some away; denied wins. The cloud metadata
addresses are refused whatever the settings say.
Provider URLs are configured by operators and trusted: none of this applies to them.
"""

import ipaddress
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# What client staff see when a callback was refused for its URL or its address.
ADDRESS_NOT_PUBLIC = "refused: address not public"
HTTP_NOT_ALLOWED = "refused: http not allowed"
INVALID_URL = "invalid URL"

# Instance metadata services: credentials of the machine the platform runs on.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure's wire server: a public address, reachable only inside Azure
    )
)
# Not public, though Python's is_global says so on some versions.
NOT_GLOBAL = tuple(
    ipaddress.ip_network(network)
    for network in ("192.0.0.0/24", "64:ff9b:1::/48", "2001:db8::/32", "::/96")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refusal(NamedTuple):
    """Why a callback URL is refused: what client staff see, and the explanation."""

    category: str
    reason: str

    def __str__(self) -> str:
        return f"{self.category}: {self.reason}"


def callback_url_refusal(url: str) -> Refusal | None:
    """Why a callback may not be sent to `url` as written (None: it may, if its host
    resolves to allowed addresses). The same rule when saving and when sending."""
    parts = urlsplit(url)
    if parts.scheme == "http" and not settings.CLIENT_CALLBACK_ALLOW_HTTP:
        return Refusal(HTTP_NOT_ALLOWED, "a callback URL must start with https://, not http://")
    if parts.scheme not in ("http", "https"):
        return Refusal(INVALID_URL, "a callback URL must start with https://")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return Refusal(INVALID_URL, "a callback URL needs a host name")
    if host == "localhost" or host.endswith(".localhost"):
        return Refusal(ADDRESS_NOT_PUBLIC, f"{host} is the platform's own machine")
    literal = ip_literal(host)
    refusal = address_refusal(literal) if literal is not None else None
    if refusal:
        return Refusal(ADDRESS_NOT_PUBLIC, f"{literal} is {refusal}")
    return None


def validate_callback_url(url: str) -> None:
    """The callback URL field's validator: the send-time rule, as a form error."""
    refusal = callback_url_refusal(url)
    if refusal:
        reason = refusal.reason[0].upper() + refusal.reason[1:]
        raise ValidationError(
            f"{reason}: callbacks are sent only over https to public addresses.",
            code="callback_url_refused",
        )


def ip_literal(host: str) -> IPAddress | None:
    """The address `host` is, if it is written as one (an IPv6 zone is dropped).

    Only an IPv6 address has a zone: "8.8.8.8%25.example" is a host name, to be looked
    up and checked as one, not 8.8.8.8."""
    address = host.strip("[]")
    if ":" in address:
        address = address.split("%")[0]
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def address_refusal(address: IPAddress) -> str | None:
    """Why a callback may not connect to `address`, or None when it may."""
    forms = [address, *_embedded_ipv4(address)]
    if any(form in METADATA_ADDRESSES for form in forms):
        return "a cloud metadata address"
    allowed, denied = _networks(
        tuple(settings.OUTBOUND_ALLOWED_NETWORKS), tuple(settings.OUTBOUND_DENIED_NETWORKS)
    )
    if any(_within(form, denied) for form in forms):
        return "in OUTBOUND_DENIED_NETWORKS"
    if any(_within(form, allowed) for form in forms):
        return None
    if not all(_is_public(form) for form in forms):
        return "not a public address"
    return None


def _is_public(address: IPAddress) -> bool:
    return (
        address.is_global
        and not address.is_private
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
        and not _within(address, NOT_GLOBAL)
    )


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64, compatible), if any:
    a connection to it may reach that IPv4 host."""
    if address.version == 4:
        return []
    if address.ipv4_mapped:
        return [address.ipv4_mapped]
    if address.sixtofour:
        return [address.sixtofour]
    if address in NAT64 or int(address) >> 32 == 0:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def _within(address: IPAddress, networks) -> bool:
    return any(address.version == network.version and address in network for network in networks)


@lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...], denied: tuple[str, ...]):
    return parse_networks(allowed), parse_networks(denied)


def parse_networks(values) -> tuple:
    """The networks of a CIDR list setting (raises ValueError on one that is not)."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value)
