"""How many connections a source address, and how many sessions an account, may hold.

`GATEWAY_MAX_CONNECTIONS_PER_ADDRESS` caps the open connections from one source address
(checked as the connection is accepted, before any protocol handshake) and
`GATEWAY_MAX_SESSIONS_PER_ACCOUNT` the logged-in sessions of one account (checked once its
credentials are right, so a refusal here is never scored by the brute-force defence).

The counts are kept in the gateway process, one `GatewayLimits` per gateway server: a slot
is taken and released in the same process, so no crash can leave a stale count behind (a
gateway that dies takes its connections with it), and checking costs no round trip before
the handshake. The price: each gateway machine counts on its own, so behind a load
balancer of N gateways an account may hold up to N times its limit (a balancer hashing on
the source address keeps an address on one gateway, which keeps that limit exact), and
each protocol's server counts apart (SFTP and FTPS run as two processes). A balancer in
front must pass the client's address on (PROXY protocol is not read yet): otherwise every
connection comes from the balancer's address and shares its limit.

The API, the same for every protocol server (SFTP: batches/gateway/sftp.py):

- `limits = GatewayLimits()`, one per gateway server, made at its start.
- As a connection is accepted: `connection = limits.connection_acquire(protocol=...,
  address=...)`; None means refused: close it at once, without a word of the protocol.
- At login, pass `admit=` to `gateway_account_authenticate`, a function that takes the
  account once its credentials are right and calls `limits.session_acquire(protocol=...,
  account=..., address=...)`, keeps the slot and answers whether it got one (None: the
  login is refused; its caller answers as for a failed login).
- When the connection ends, however it ends (in a `finally`): `.release()` each slot it
  got. Releasing is idempotent and thread-safe.

Refusals are logged and recorded by these functions, never by the caller.

`session_room` answers, without taking a slot, whether an account could open one more
session (SSH asks whether a key would do before the login is made). A refusal is logged
every time; it is stored as a gateway event once per run of refusals (until the count
falls below the limit again), so that a flood of refused connections writes one row.
"""

import logging
import threading

from django.conf import settings

from batches.gateway.audit import gateway_event_record
from batches.models import GatewayAccount, GatewayAction, GatewayOutcome

logger = logging.getLogger("batches.gateway")


class Slot:
    """One connection or session counted against its limit until `release`."""

    def __init__(self, counter: "_Counter", key: str):
        self.counter, self.key = counter, key
        self.released = False

    def release(self) -> None:
        """Give the slot back; safe to call again, from any thread."""
        with self.counter.lock:
            if self.released:
                return
            self.released = True
            self.counter.counts[self.key] -= 1
            if self.counter.counts[self.key] < self.counter.limit():
                self.counter.noted.discard(self.key)
            if not self.counter.counts[self.key]:
                del self.counter.counts[self.key]


class _Counter:
    def __init__(self, setting: str):
        self.setting = setting
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.noted: set[str] = set()  # keys whose current run of refusals is recorded

    def limit(self) -> int:
        return getattr(settings, self.setting)

    def acquire(self, key: str) -> tuple[Slot | None, bool]:
        """A slot, or None and whether this refusal is the first of its run."""
        with self.lock:
            if self.counts.get(key, 0) >= self.limit():
                first = key not in self.noted
                self.noted.add(key)
                return None, first
            self.counts[key] = self.counts.get(key, 0) + 1
            return Slot(self, key), False

    def full(self, key: str) -> tuple[bool, bool]:
        with self.lock:
            if self.counts.get(key, 0) < self.limit():
                return False, False
            first = key not in self.noted
            self.noted.add(key)
            return True, first

    def count(self, key: str) -> int:
        with self.lock:
            return self.counts.get(key, 0)


class GatewayLimits:
    """The connection and session counts of one gateway server; see the module docstring."""

    def __init__(self):
        self.connections = _Counter("GATEWAY_MAX_CONNECTIONS_PER_ADDRESS")
        self.sessions = _Counter("GATEWAY_MAX_SESSIONS_PER_ACCOUNT")

    def connection_acquire(self, *, protocol: str, address: str) -> Slot | None:
        """A slot for a new connection from `address`, or None: refused, close it unanswered."""
        slot, first = self.connections.acquire(address)
        if slot is None:
            self._refused(
                protocol=protocol,
                address=address,
                username="",
                account=None,
                reason=(
                    f"too many connections from this address (limit {self.connections.limit()})"
                ),
                record=first,
            )
        return slot

    def session_acquire(
        self, *, protocol: str, account: GatewayAccount, address: str
    ) -> Slot | None:
        """A slot for a new logged-in session of `account`, or None: refuse the login."""
        slot, first = self.sessions.acquire(account.username)
        if slot is None:
            self._session_refused(protocol, account.username, address, account, first)
        return slot

    def session_room(self, *, protocol: str, username: str, address: str) -> bool:
        """Whether `username` may open one more session now (no slot is taken)."""
        full, first = self.sessions.full(username)
        if full:
            self._session_refused(protocol, username, address, None, first)
        return not full

    def open_connections(self, address: str) -> int:
        return self.connections.count(address)

    def open_sessions(self, username: str) -> int:
        return self.sessions.count(username)

    def _session_refused(self, protocol, username, address, account, record) -> None:
        self._refused(
            protocol=protocol,
            address=address,
            username=username,
            account=account,
            reason=f"too many sessions for this account (limit {self.sessions.limit()})",
            record=record,
        )

    @staticmethod
    def _refused(*, protocol, address, username, account, reason, record) -> None:
        logger.warning(
            "Gateway %s: refused user %r from %s: %s", protocol, username, address, reason
        )
        if record:
            gateway_event_record(
                action=GatewayAction.LOGIN_REFUSED,
                protocol=protocol,
                address=address,
                username=username,
                account=account,
                outcome=GatewayOutcome.REFUSED,
                reason=reason,
            )
