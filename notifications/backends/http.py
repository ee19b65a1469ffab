"""The HTTP client of the provider backends and client callbacks: a urllib3 pool with a
total deadline on each exchange and a cap on the answer it reads.

urllib3 is what requests sends with; the backends use it directly because the
layer requests adds costs more than the rest of a send: posting to a loopback
sink took 0.7 ms of CPU a message with a requests.Session against 0.27 ms with
a urllib3 pool, both kept alive (bench/dispatch.py prints both ceilings).

The pool keeps connections open between messages, lets several send threads
post at once, and never retries on its own: a failed send is the dispatcher's
to retry, with backoff.

Bounds. urllib3's read timeout bounds each read, not the answer: a peer that
sends one byte every 9 s satisfies a 10 s read timeout for ever. So each
exchange has a deadline: once the request is sent, its socket is handed to a
watchdog thread that shuts it down when the deadline passes, which ends any read
waiting on it (connecting and sending are bounded by the connect timeout). The
answer is streamed: its status line and headers, then at most `max_answer_bytes`
of its body; a longer body is never read, its connection is closed instead.
"""

import contextlib
import functools
import json
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationValueError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util.connection import allowed_gai_family
from urllib3.util.url import parse_url

from clients.outbound import ADDRESS_NOT_PUBLIC, IPAddress, address_refusal, ip_literal
from notifications.backends.deadline import Deadline, watchdog


class HttpFailure(Exception):
    """No answer: the connection failed, was reset, or no status came before the deadline."""


@dataclass(frozen=True)
class HttpAnswer:
    """The answer to a request: its status, and its body unless that was `cut`.

    A peer's status line is its answer (a 201 means the message was taken, whatever
    follows); `cut` says why the body was not read whole (too big, too slow, broken
    off), in which case `text` is empty.
    """

    status: int
    text: str
    cut: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self):
        """The answer's JSON, or None when the body is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def excerpt(self) -> str:
        """What of the body to quote in an error or a note."""
        return self.cut or self.text[:200]


class HttpClient:
    def __init__(
        self,
        *,
        timeout: tuple[float, float],
        max_answer_bytes: int,
        pool_size: int,
        headers: dict[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        public_only: bool = False,
    ):
        """`timeout`: (connect timeout, total deadline of an exchange), in seconds.
        `public_only`: connect only to the addresses clients/outbound.py allows."""
        connect_timeout, self.deadline = timeout
        self.max_answer_bytes = max_answer_bytes
        default_headers = dict(headers or {})
        if basic_auth:
            default_headers.update(urllib3.make_headers(basic_auth=":".join(basic_auth)))
        self.pool = urllib3.PoolManager(
            maxsize=pool_size,
            retries=False,
            # No single read may outlast the deadline; the watchdog ends the exchange at it.
            timeout=urllib3.Timeout(
                connect=min(connect_timeout, self.deadline), read=self.deadline
            ),
            headers=default_headers,
        )
        self.pool.pool_classes_by_scheme = (
            {"http": _CheckedPool, "https": _CheckedHttpsPool}
            if public_only
            else {"http": _WatchedPool, "https": _WatchedHttpsPool}
        )

    def post(
        self,
        url: str,
        *,
        form: dict | None = None,
        json_body=None,
        body: bytes | None = None,
        headers: dict | None = None,
        started: float | None = None,
    ) -> HttpAnswer:
        """POST a form, a JSON body or bytes as they are; raises HttpFailure when no answer came.

        `started` (a time.monotonic() value): when the caller's send began, if before
        this call (a wait for the provider's rate): the deadline counts from then.
        """
        if body is not None:
            content_type = "application/octet-stream"
        elif json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        else:
            body = urlencode(form or {}).encode()
            content_type = "application/x-www-form-urlencoded"
        headers = {
            **self.pool.headers,
            "Content-Type": content_type,
            "User-Agent": "kokatto",
            **(headers or {}),
        }
        exchange = Deadline(self.deadline - (time.monotonic() - started if started else 0))
        _current.exchange = exchange
        try:
            # Straight to the host's pool: PoolManager.request would merge the headers
            # and parse the URL again, and look for a redirect to follow (none is).
            target = _parsed_url(url)
            response = self.pool.connection_from_host(
                target.host, port=target.port, scheme=target.scheme
            ).urlopen(
                "POST",
                target.request_uri,
                body=body,
                headers=headers,
                preload_content=False,
                redirect=False,
                assert_same_host=False,
            )
            data, cut = self._read_body(response)
        except HTTPError as exc:
            timed_out = watchdog().finish(exchange) or isinstance(exc, ReadTimeoutError)
            raise self._failure(exc, timed_out) from exc
        finally:
            _current.exchange = None
            # Whatever happened, the watchdog must let go of this socket before the
            # connection goes back to the pool for another exchange.
            expired = watchdog().finish(exchange)
        if expired:
            # Shut down mid-body, an answer without a length would look complete.
            data, cut = b"", f"answer not whole within {self.deadline:g} s"
        if cut:
            response.close()  # the rest of the body stays unread: never reuse this connection
        response.release_conn()
        return HttpAnswer(response.status, data.decode("utf-8", errors="replace"), cut)

    def _read_body(self, response) -> tuple[bytes, str]:
        """The body, or b"" and why it was not read whole."""
        too_big = f"answer over {self.max_answer_bytes} bytes, not read"
        declared = response.length_remaining
        if declared is not None and declared > self.max_answer_bytes:
            return b"", too_big
        # A length within the cap bounds a plain body: read it in one go, the quicker way.
        # Without one, or compressed (it could unpack to any size), read one byte past the cap.
        plain = declared is not None and "content-encoding" not in response.headers
        try:
            data = response.read() if plain else response.read(self.max_answer_bytes + 1)
        except (HTTPError, OSError) as exc:
            return b"", f"answer broken off ({type(exc).__name__})"
        if len(data) > self.max_answer_bytes:
            return b"", too_big
        return data, ""

    def _failure(self, exc: HTTPError, timed_out: bool) -> HttpFailure:
        """The failure, its kind first (notifications/failures.py shows client staff only that)."""
        if timed_out:
            return HttpFailure(f"Timeout: no answer within {self.deadline:g} s")
        if isinstance(exc, AddressRefused):
            return HttpFailure(exc.refusal)
        if isinstance(exc, NameResolutionError):  # a NewConnectionError: before it
            return HttpFailure(f"Name not found: {exc}")
        if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError: first
            refused = isinstance(exc.__cause__, ConnectionRefusedError)
            return HttpFailure(f"{'Connection refused' if refused else 'Connection failed'}: {exc}")
        if isinstance(exc, ConnectTimeoutError):
            return HttpFailure(f"Connect timeout: {exc}")
        if isinstance(exc, SSLError):
            return HttpFailure(f"TLS error: {exc}")
        if isinstance(exc, LocationValueError):
            return HttpFailure(f"Invalid URL: {exc}")
        return HttpFailure(f"Connection failed: {exc}")


@functools.lru_cache(maxsize=1024)
def _parsed_url(url: str):
    """parse_url, once a URL: a provider's endpoint or a client's callback URL is posted to
    again and again, and parsing it is a tenth of a send's own CPU."""
    return parse_url(url)


class AddressRefused(NewConnectionError):
    """The host is, or resolves to, an address a client's request may not reach."""

    def __init__(self, conn, refusal: str):
        self.refusal = refusal
        super().__init__(conn, refusal)


# The deadline of the exchange the current thread is sending, for its connection to
# hand its socket over.
_current = threading.local()


def _shut_down(sock) -> None:
    # socket.socket's own shutdown, also for a TLS socket: the reading thread owns
    # the TLS state, this only ends the connection under it.
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


# A body up to this size goes out in one write with the request's head.
ONE_WRITE_MAX_BYTES = 64 * 1024


class _WatchedConnectionMixin:
    """Hands the socket to the watchdog once a request is sent; writes a short request
    (head and body) to the socket at once, where http.client writes its head, then
    its body: one system call and one TCP segment a message instead of two."""

    _held: list[bytes] | None = None

    def request(self, method, url, body=None, headers=None, **kwargs) -> None:
        if isinstance(body, bytes) and len(body) <= ONE_WRITE_MAX_BYTES:
            self._held = []
        try:
            super().request(method, url, body=body, headers=headers, **kwargs)
            held, self._held = self._held, None
            if held:
                super().send(b"".join(held))
        finally:
            self._held = None
        exchange = getattr(_current, "exchange", None)
        if exchange is not None:
            watchdog().watch(exchange, functools.partial(_shut_down, self.sock))

    def send(self, data) -> None:
        if self._held is not None and isinstance(data, bytes):
            self._held.append(data)
        else:
            super().send(data)

    def getresponse(self):
        response = super().getresponse()
        exchange = getattr(_current, "exchange", None)
        if exchange is not None and exchange.expired:
            # Shut down while the headers came in: http.client reads the end of the
            # connection as their end, so what arrived is no answer. (urllib3 turns
            # this socket timeout into its ReadTimeoutError.)
            raise TimeoutError("deadline passed")
        return response


class _WatchedConnection(_WatchedConnectionMixin, HTTPConnection):
    pass


class _WatchedHttpsConnection(_WatchedConnectionMixin, HTTPSConnection):
    pass


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHttpsPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHttpsConnection


class _CheckedAddressMixin:
    """Connect only to allowed addresses, and to the very address that was checked."""

    def _new_conn(self):
        name = self._dns_host
        addresses = _checked_addresses(self, name)
        error = None
        try:
            for address in addresses:
                if _time_left(self) == 0:
                    break
                # urllib3 connects to _dns_host; TLS uses self.host (SNI, certificate).
                self._dns_host = str(address)
                try:
                    return super()._new_conn()
                except ConnectTimeoutError as exc:  # NewConnectionError too: try the next
                    error = exc
        finally:
            self._dns_host = name
        raise error or ConnectTimeoutError(self, f"No time left to connect to {name}")


def _checked_addresses(conn, name: str) -> list[IPAddress]:
    """The addresses `name` resolves to, all of them allowed; raises AddressRefused."""
    literal = ip_literal(name)
    addresses = [literal] if literal is not None else _resolve(conn, name)
    refusals = [f"{address} is {why}" for address in addresses if (why := address_refusal(address))]
    if refusals:
        where = "" if literal is not None else f"{name} resolves to "
        raise AddressRefused(conn, f"{ADDRESS_NOT_PUBLIC}: {where}{'; '.join(refusals)}")
    return addresses


def _resolve(conn, name: str) -> list[IPAddress]:
    """One DNS lookup of `name`, given no longer than the exchange has left."""
    answer = {}

    def look_up():
        try:
            answer["infos"] = socket.getaddrinfo(
                name, conn.port, allowed_gai_family(), socket.SOCK_STREAM
            )
        except OSError as exc:  # socket.gaierror among them
            answer["error"] = exc

    within = _time_left(conn)
    lookup = threading.Thread(target=look_up, name="kokatto-dns", daemon=True)
    lookup.start()
    lookup.join(within)
    if lookup.is_alive():
        raise ConnectTimeoutError(conn, f"Resolving {name} took longer than {within:g} s")
    if "error" in answer:
        raise NameResolutionError(name, conn, answer["error"])
    found = (ip_literal(info[4][0]) for info in answer["infos"])
    return list(dict.fromkeys(address for address in found if address is not None))


def _time_left(conn) -> float:
    """Seconds left to connect: the connect timeout (HttpClient always sets one), within
    the exchange's deadline."""
    limits = [conn.timeout]
    exchange = getattr(_current, "exchange", None)
    if exchange is not None:
        limits.append(exchange.when - time.monotonic())
    return max(0.0, min(limits))


class _CheckedConnection(_CheckedAddressMixin, _WatchedConnection):
    pass


class _CheckedHttpsConnection(_CheckedAddressMixin, _WatchedHttpsConnection):
    pass


class _CheckedPool(HTTPConnectionPool):
    ConnectionCls = _CheckedConnection


class _CheckedHttpsPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHttpsConnection


def provider_http_client(
    *,
    timeout: tuple[float, float] | None,
    max_answer_bytes: int | None,
    pool_size: int,
    headers: dict[str, str] | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> HttpClient:
    """The client of a provider backend: the bounds of the settings (connect timeout,
    DELIVERY_SEND_TIMEOUT_SECONDS in all, PROVIDER_HTTP_MAX_ANSWER_BYTES), unless the
    backend's OPTIONS give it its own `timeout` (connect, total) or `max_answer_bytes`."""
    return HttpClient(
        timeout=timeout
        or (settings.PROVIDER_HTTP_CONNECT_TIMEOUT_SECONDS, settings.DELIVERY_SEND_TIMEOUT_SECONDS),
        max_answer_bytes=max_answer_bytes or settings.PROVIDER_HTTP_MAX_ANSWER_BYTES,
        pool_size=pool_size,
        headers=headers,
        basic_auth=basic_auth,
    )
