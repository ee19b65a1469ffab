"""The HTTP client of the provider backends and client callbacks: kept-alive
connections, a total deadline on each exchange and a cap on the answer it reads.

http.client, the standard library's HTTP/1.1 client, parses each answer (its status
line, headers, and a sized, chunked or open-ended body); this module keeps the
connections, writes the requests and bounds each exchange. It needs little more:
connections kept open between messages and shared by the send threads, never a
retry (a failed send is the dispatcher's to retry, with backoff), never a redirect.
urllib3 did this until issue 20, and its layers cost more than the rest of a send:
posting to a loopback sink took 220 to 240 µs of CPU a message with a urllib3 pool
against 85 to 100 µs with http.client alone (bench/dispatch.py prints both ceilings).

Bounds. A socket timeout bounds each read, not the answer: a peer that sends one
byte every 9 s satisfies a 10 s read timeout for ever. So each exchange has a
deadline: connecting (name lookup included) must end within the connect timeout
and the deadline; once the request is being written, its socket is given to a
watchdog thread that shuts it down when the deadline passes, which ends any read
waiting on it. The answer is read as it comes: its status line and headers, then at
most `max_answer_bytes` of its body (unpacked, where it came gzip- or
deflate-compressed); a longer body is never read, its connection is closed instead.
"""

import contextlib
import functools
import http.client
import json
import os
import re
import select
import socket
import ssl
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlencode

import urllib3
from django.conf import settings
from urllib3.exceptions import LocationParseError
from urllib3.util.connection import allowed_gai_family
from urllib3.util.url import parse_url

from clients.outbound import ADDRESS_NOT_PUBLIC, address_refusal, ip_literal
from notifications.backends.deadline import Deadline, watchdog


class HttpFailure(Exception):
    """No answer: the connection failed, was reset, or no status came before the deadline.

    Its text starts with the kind of failure (notifications/failures.py shows client
    staff only that)."""


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
        except (ValueError, RecursionError):  # RecursionError: nested too deep
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
        `pool_size`: connections kept open to each peer between exchanges (more may be
        open at once, and are closed after theirs).
        `public_only`: connect only to the addresses clients/outbound.py allows."""
        connect_timeout, self.deadline = timeout
        self.connect_timeout = min(connect_timeout, self.deadline)
        self.max_answer_bytes = max_answer_bytes
        self.public_only = public_only
        self.headers = dict(headers or {})
        if basic_auth:
            self.headers.update(urllib3.make_headers(basic_auth=":".join(basic_auth)))
        self.pool_size = pool_size
        self.kept = KeptConnections(per_peer=pool_size)

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
        body, content_type = encoded_body(form=form, json_body=json_body, body=body)
        peer = peer_of(url)
        request = self.request(peer, content_type, headers or {}, body)
        exchange = Deadline(self.deadline - (time.monotonic() - started if started else 0))
        connection = self.kept.take(peer) or self.connect(peer, exchange.when)
        response = _Answer(connection, method="POST")
        try:
            watchdog().watch(exchange, functools.partial(_shut_down, connection))
            connection.sendall(request)
            response.begin()
            if exchange.expired:
                # Shut down while the headers came in: http.client reads the end of the
                # connection as their end, so what arrived is no answer.
                raise TimeoutError("deadline passed")
            data, cut = self._read_body(response)
        except (OSError, http.client.HTTPException) as exc:
            _close(response, connection)
            timed_out = watchdog().finish(exchange) or isinstance(exc, TimeoutError)
            raise self._failure(exc, timed_out) from exc
        finally:
            # Whatever happened, the watchdog must let go of this socket before the
            # connection is kept for another exchange.
            expired = watchdog().finish(exchange)
        if expired:
            # Shut down mid-body, an answer without a length would look complete.
            data, cut = b"", f"answer not whole within {self.deadline:g} s"
        if cut or response.will_close or not response.isclosed() or response.status < 200:
            _close(response, connection)  # what is left of the answer stays unread
        else:
            self.kept.keep(peer, connection)
        return HttpAnswer(response.status, data.decode("utf-8", errors="replace"), cut)

    def request(self, peer: "Peer", content_type: str, headers: dict, body: bytes) -> bytes:
        """The POST to `peer`, head and body, with the client's headers and the caller's."""
        return request_bytes(
            peer,
            {
                **self.headers,
                "Content-Type": content_type,
                "User-Agent": "kokatto",
                # Without it a peer may answer in any encoding (RFC 9110): br, zstd.
                "Accept-Encoding": "identity",
                **headers,
            },
            body,
        )

    def close(self) -> None:
        """Close the connections kept open."""
        self.kept.close_all()

    def _read_body(self, response: http.client.HTTPResponse) -> tuple[bytes, str]:
        """The body, or b"" and why it was not read whole."""
        declared = response.length
        if declared is not None and declared > self.max_answer_bytes:
            return b"", too_big(self.max_answer_bytes)
        encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
        try:
            if encoding != "identity":
                return self._unpacked(response, encoding)
            # A length within the cap bounds a plain body: read it in one go, the quicker
            # way. Without one, read one byte past the cap.
            data = (
                response.read()
                if declared is not None
                else response.read(self.max_answer_bytes + 1)
            )
        except (http.client.HTTPException, OSError) as exc:
            return b"", f"answer broken off ({type(exc).__name__})"
        if len(data) > self.max_answer_bytes:
            return b"", too_big(self.max_answer_bytes)
        return data, ""

    def _unpacked(self, response, encoding: str) -> tuple[bytes, str]:
        """A compressed body, unpacked to at most the cap."""
        unpacker = Unpacker(encoding, self.max_answer_bytes)
        while not unpacker.done:
            packed = response.read(16 * 1024)
            if not packed:
                break
            unpacker.feed(packed)
        return unpacker.result()

    def _failure(self, exc: Exception, timed_out: bool) -> HttpFailure:
        return no_answer_in_time(self.deadline) if timed_out else connection_failure(exc)

    def connect(self, peer: "Peer", when: float) -> socket.socket:
        """A new connection to `peer`, made within the connect timeout and the exchange's
        deadline; with public_only, only to an address allowed, the very one checked."""
        ends = min(time.monotonic() + self.connect_timeout, when)
        if ends <= time.monotonic():
            raise no_answer_in_time(self.deadline)
        error = None
        for address in self._addresses(peer, ends):
            left = ends - time.monotonic()
            if left <= 0:
                break
            try:
                connection = _open(address, peer.port, timeout=left)
            except OSError as exc:  # refused, unreachable, timed out: try the next
                error = exc
                continue
            try:
                return self._ready(connection, peer, ends)
            except BaseException:
                connection.close()
                raise
        raise HttpFailure(_connect_failure(error, peer))

    def _ready(self, connection: socket.socket, peer: "Peer", ends: float) -> socket.socket:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if peer.scheme == "https":
            # A context a connection, as urllib3 made one: it reads the trusted
            # certificates (SSL_CERT_FILE among them) when it is made.
            context = ssl.create_default_context()
            connection.settimeout(max(0.001, ends - time.monotonic()))
            try:
                connection = context.wrap_socket(connection, server_hostname=peer.host)
            except (ssl.SSLError, ValueError) as exc:
                raise HttpFailure(f"TLS error: {exc}") from exc
            except TimeoutError as exc:
                raise HttpFailure(f"Connect timeout: TLS handshake with {peer.host}") from exc
            except OSError as exc:
                raise HttpFailure(f"Connection failed: TLS handshake: {exc}") from exc
        # No single read may outlast the deadline; the watchdog ends the exchange at it.
        connection.settimeout(self.deadline)
        return connection

    def _addresses(self, peer: "Peer", ends: float) -> list[str]:
        """The addresses to try, in order; with public_only, all of them allowed (raises
        HttpFailure otherwise)."""
        literal = ip_literal(peer.host)
        # An IPv6 literal keeps its zone, where one is allowed (never a public address).
        addresses = (
            [peer.host if "%" in peer.host and not self.public_only else str(literal)]
            if literal is not None
            else _resolve(peer, ends)
        )
        if self.public_only:
            refusals = [
                f"{address} is {why}"
                for address in addresses
                if (why := address_refusal(ip_literal(address)))
            ]
            if refusals:
                where = "" if literal is not None else f"{peer.host} resolves to "
                raise HttpFailure(f"{ADDRESS_NOT_PUBLIC}: {where}{'; '.join(refusals)}")
        return addresses


def encoded_body(
    *, form: dict | None = None, json_body=None, body: bytes | None = None
) -> tuple[bytes, str]:
    """A request's body and its Content-Type: bytes as they are, a JSON body, or a form."""
    if body is not None:
        return body, "application/octet-stream"
    if json_body is not None:
        return json.dumps(json_body).encode(), "application/json"
    return urlencode(form or {}).encode(), "application/x-www-form-urlencoded"


def no_answer_in_time(deadline: float) -> HttpFailure:
    return HttpFailure(f"Timeout: no answer within {deadline:g} s")


def connection_failure(exc: Exception) -> HttpFailure:
    """The failure of a connection that broke (or never was) before any answer came."""
    if isinstance(exc, ssl.SSLError):
        return HttpFailure(f"TLS error: {exc}")
    return HttpFailure(f"Connection failed: {type(exc).__name__}: {exc}")


def too_big(max_answer_bytes: int) -> str:
    return f"answer over {max_answer_bytes} bytes, not read"


class Unpacker:
    """A compressed answer's body unpacked as it comes, to at most `cap` bytes: a few
    kilobytes can unpack to gigabytes, so its length is no guide. gzip and deflate
    (zlib's format, or raw as some peers send it); any other encoding is not read."""

    ENCODINGS = ("gzip", "x-gzip", "deflate")

    def __init__(self, encoding: str, cap: int):
        self.encoding, self.cap = encoding, cap
        self.cut = (
            "" if encoding in self.ENCODINGS else f"answer in {encoding[:40]!r} encoding, not read"
        )
        self._unpacker = None  # made on the first bytes, which tell raw deflate from zlib's
        self._data = bytearray()
        self._packed = 0

    @property
    def done(self) -> bool:
        return bool(self.cut) or (self._unpacker is not None and self._unpacker.eof)

    def feed(self, packed: bytes) -> None:
        if self.done or not packed:
            return
        if self._unpacker is None:
            self._unpacker = zlib.decompressobj(self._window_bits(packed))
        limit = self.cap + 1
        self._packed += len(packed)
        if self._packed > limit:  # more than the cap even packed
            self.cut = too_big(self.cap)
            return
        try:
            self._data += self._unpacker.decompress(packed, limit - len(self._data))
        except zlib.error as exc:
            self.cut = f"answer not readable as {self.encoding} ({exc})"
            return
        if len(self._data) > self.cap:
            self.cut = too_big(self.cap)

    def result(self) -> tuple[bytes, str]:
        """The body, or b"" and why it was not read whole."""
        if self.cut:
            return b"", self.cut
        if self._unpacker is None:  # no body at all
            return b"", ""
        if not self._unpacker.eof:
            return b"", "answer broken off (its compressed body ended early)"
        return bytes(self._data), ""

    def _window_bits(self, first: bytes) -> int:
        if self.encoding != "deflate":
            return 16 + zlib.MAX_WBITS  # gzip's header and trailer
        zlib_header = (
            len(first) > 1 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
        )
        return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS


def _open(address: str, port: int, *, timeout: float) -> socket.socket:
    """A TCP connection to a numeric address: never a name looked up here, unchecked."""
    family, kind, protocol, _, where = socket.getaddrinfo(
        address, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
    )[0]
    connection = socket.socket(family, kind, protocol)
    try:
        connection.settimeout(timeout)
        connection.connect(where)
    except BaseException:
        connection.close()
        raise
    return connection


class _Answer(http.client.HTTPResponse):
    """http.client's answer, past any interim (1xx) answer: http.client skips only 100,
    and a 102 or 103 read as the answer would leave the real one to be read as the
    next request's."""

    MAX_INTERIM_ANSWERS = 10

    def _read_status(self):
        for _ in range(self.MAX_INTERIM_ANSWERS):
            version, status, reason = super()._read_status()
            if not 100 <= status < 200 or status == http.client.SWITCHING_PROTOCOLS:
                break
            http.client.parse_headers(self.fp)  # the interim answer's headers, unused
        return version, status, reason


def _connect_failure(error: OSError | None, peer: "Peer") -> str:
    where = f"host {peer.host}, port {peer.port}"
    if error is None:
        return f"Connect timeout: no time left to connect to {where}"
    detail = f"{where}: Failed to establish a new connection: {error}"
    if isinstance(error, TimeoutError):
        return f"Connect timeout: {detail}"
    if isinstance(error, ConnectionRefusedError):
        return f"Connection refused: {detail}"
    return f"Connection failed: {detail}"


def _resolve(peer: "Peer", ends: float) -> list[str]:
    """One DNS lookup of the peer's name, given no longer than the connection has left."""
    answer = {}

    def look_up():
        try:
            answer["infos"] = socket.getaddrinfo(
                peer.host, peer.port, allowed_gai_family(), socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:  # socket.gaierror; a label too long
            answer["error"] = exc

    within = max(0.0, ends - time.monotonic())
    lookup = threading.Thread(target=look_up, name="kokatto-dns", daemon=True)
    lookup.start()
    lookup.join(within)
    if lookup.is_alive():
        raise HttpFailure(f"Connect timeout: resolving {peer.host} took longer than {within:g} s")
    if isinstance(answer.get("error"), UnicodeError):
        raise HttpFailure(f"Invalid URL: {peer.host!r} is no host name ({answer['error']})")
    if "error" in answer:
        raise HttpFailure(f"Name not found: Failed to resolve '{peer.host}' ({answer['error']})")
    found = (info[4][0] for info in answer["infos"] if ip_literal(info[4][0]) is not None)
    return list(dict.fromkeys(found))


class Peer(NamedTuple):
    """Where a URL's request goes."""

    scheme: str
    host: str  # a name, or an address without the brackets of IPv6
    port: int
    target: str  # the request target: path and query
    host_header: str


DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.lru_cache(maxsize=1024)
def peer_of(url: str) -> Peer:
    """A URL parsed once: a provider's endpoint or a client's callback URL is posted to
    again and again."""
    try:
        parsed = parse_url(url)
    except LocationParseError as exc:
        raise HttpFailure(f"Invalid URL: {exc}") from exc
    scheme = (parsed.scheme or "").lower()
    if scheme not in DEFAULT_PORTS:
        raise HttpFailure(f"Invalid URL: not an http or https URL: {url[:200]!r}")
    if not parsed.host:
        raise HttpFailure(f"Invalid URL: no host in {url[:200]!r}")
    port = parsed.port or DEFAULT_PORTS[scheme]
    host_header = parsed.host if parsed.port in (None, DEFAULT_PORTS[scheme]) else parsed.netloc
    host = parsed.host.strip("[]").rstrip(".")
    # parse_url escapes what may not be in a request target (spaces, line breaks).
    return Peer(scheme, host, port, parsed.request_uri, host_header.split("@")[-1])


# http.client's own rules for a header (a value must not start a new line).
_HEADER_NAME = re.compile(r"[^:\s][^:\r\n]*")
_NOT_IN_VALUE = re.compile(r"[\r\n\x00]")


def request_bytes(peer: Peer, headers: dict[str, str], body: bytes) -> bytes:
    """The request, head and body, to be written at once: one system call and one TCP
    segment a message where http.client writes the head, then the body."""
    lines = [f"POST {peer.target} HTTP/1.1", f"Host: {peer.host_header}"]
    for name, value in headers.items():
        value = str(value)
        if not _HEADER_NAME.fullmatch(name) or _NOT_IN_VALUE.search(value):
            raise HttpFailure(f"Invalid request: header {name!r}: {value[:100]!r}")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class KeptConnections:
    """Connections kept open between exchanges: up to `per_peer` to each peer, for the
    MAX_PEERS peers posted to last, each for at most MAX_IDLE_SECONDS (a NAT or a
    firewall may forget an idle connection without a word: the next request on it
    would wait out its deadline). A connection the peer closed while it was kept (or
    wrote on, which no peer may) is dropped when taken. A forked process starts with
    none: the parent's are the parent's."""

    MAX_PEERS = 32
    MAX_IDLE_SECONDS = 60.0

    def __init__(self, *, per_peer: int):
        self.per_peer = per_peer
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # peer -> [(connection, when it was kept)], the most recently kept last
        self._by_peer: OrderedDict[Peer, list[tuple[socket.socket, float]]] = OrderedDict()

    def take(self, peer: Peer) -> socket.socket | None:
        if self._pid != os.getpid():
            self._reset()
        while True:
            with self._lock:
                kept = self._by_peer.get(peer)
                if not kept:
                    return None
                connection, since = kept.pop()
            if time.monotonic() - since < self.MAX_IDLE_SECONDS and _still_open(connection):
                return connection
            connection.close()

    def keep(self, peer: Peer, connection: socket.socket) -> None:
        closing = []
        with self._lock:
            kept = self._by_peer.setdefault(peer, [])
            self._by_peer.move_to_end(peer)
            if len(kept) < self.per_peer:
                kept.append((connection, time.monotonic()))
            else:
                closing.append(connection)
            while len(self._by_peer) > self.MAX_PEERS:
                closing += [unkept for unkept, _ in self._by_peer.popitem(last=False)[1]]
        for unkept in closing:
            unkept.close()

    def close_all(self) -> None:
        with self._lock:
            kept, self._by_peer = self._by_peer, OrderedDict()
        for connections in kept.values():
            for connection, _ in connections:
                connection.close()


def _still_open(connection: socket.socket) -> bool:
    """Whether a kept connection is as it was left: nothing to read, not even its end
    (nor decrypted bytes that TLS holds, which the socket cannot show)."""
    if isinstance(connection, ssl.SSLSocket) and connection.pending():
        return False
    poller = select.poll()
    poller.register(connection, select.POLLIN)
    return not poller.poll(0)


def _close(response: http.client.HTTPResponse, connection: socket.socket) -> None:
    """Close a connection never to be used again: the socket closes once the answer's
    reader lets go of it too."""
    response.close()
    connection.close()


def _shut_down(connection: socket.socket) -> None:
    # socket.socket's own shutdown, also for a TLS socket: the reading thread owns
    # the TLS state, this only ends the connection under it.
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(connection, socket.SHUT_RDWR)


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
