"""Slow and greedy HTTP peers on loopback: answers that trickle, never come, or never end.

A real HTTP server on 127.0.0.1 (a port the OS picks) for the outgoing calls of
the platform (provider backends, client callbacks). It reads each POST whole,
then answers as its `Answer` says, and records each exchange: how many bytes of
the answer it wrote, whether it wrote them all or the client went away first.
"""

import contextlib
import itertools
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOPBACK = "127.0.0.1"
HUGE_CHUNK = 64 * 1024


@dataclass
class Answer:
    """How the server answers each request (`headers`: more headers to send).

    trickle: "headers" sends the status line at once, then `trickle_bytes` bytes of a
    header one every `interval` seconds; "body" sends the headers at once, then the
    body one byte every `interval` seconds. `size` repeats `body` up to that many
    bytes, written as fast as the client reads (a huge answer); `declare_length`
    False leaves Content-Length out (the body ends when the connection does).
    `hold` makes the server wait before answering until that event is set (or
    `hold_seconds` pass); `hang` makes it wait until the server stops. `signal` is set
    once `signal_after` requests have arrived.
    """

    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    trickle: str = ""
    trickle_bytes: int = 50
    interval: float = 0.1
    size: int | None = None
    declare_length: bool = True
    hold: threading.Event | None = None
    hold_seconds: float = 20.0
    hang: bool = False
    signal: threading.Event | None = None
    signal_after: int = 1


@dataclass
class Exchange:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.monotonic)
    bytes_sent: int = 0  # of the answer, status line and headers included
    answer_size: int = 0  # what the whole answer would have been
    finished: bool = False  # the whole answer was written
    hung_up: bool = False  # the client closed the connection before it was
    held_until_signalled: bool | None = None  # with `hold`: the event came before the wait ran out
    done: threading.Event = field(default_factory=threading.Event)


class SlowHttpServer:
    def __init__(self, answer: Answer | None = None, *, host: str = LOOPBACK, port: int = 0):
        self.answer = answer or Answer()
        self.exchanges: list[Exchange] = []
        self.connections = 0  # accepted, whether or not a request followed
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server((host, port), _Handler, peer=self)
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> "SlowHttpServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # wakes handlers that hold or trickle
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_for_exchanges(self, count: int, timeout: float = 30) -> list[Exchange]:
        """The first `count` exchanges once each has ended (written whole or hung up on)."""
        deadline = time.monotonic() + timeout
        while len(self.exchanges) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        exchanges = self.exchanges[:count]
        for exchange in exchanges:
            exchange.done.wait(max(0, deadline - time.monotonic()))
        return exchanges

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address, handler, *, peer: SlowHttpServer):
        self.peer = peer
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        pass  # a client that gave up is what these tests are about

    def get_request(self):
        request = super().get_request()
        self.peer.connections += 1
        return request


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        peer: SlowHttpServer = self.server.peer
        answer = peer.answer
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        exchange = Exchange(path=self.path, headers=dict(self.headers.items()), body=body)
        peer._record(exchange)
        self.close_connection = True
        if answer.signal is not None and len(peer.exchanges) >= answer.signal_after:
            answer.signal.set()
        try:
            if answer.hold is not None:
                exchange.held_until_signalled = answer.hold.wait(answer.hold_seconds)
            if answer.hang:
                peer.stopping.wait()
            self._answer(answer, exchange, peer.stopping)
            exchange.finished = True
        except OSError:  # BrokenPipe, ConnectionReset: the client went away
            exchange.hung_up = True
        finally:
            exchange.done.set()

    def _answer(self, answer: Answer, exchange: Exchange, stopping: threading.Event) -> None:
        size = len(answer.body) if answer.size is None else answer.size
        headers = [f"HTTP/1.1 {answer.status} Answer\r\n".encode()]
        if answer.trickle == "headers":
            headers.append(b"X-Slow: " + b"a" * answer.trickle_bytes + b"\r\n")
        headers.append(f"Content-Type: {answer.content_type}\r\n".encode())
        headers.extend(f"{name}: {value}\r\n".encode() for name, value in answer.headers.items())
        if answer.declare_length:
            headers.append(f"Content-Length: {size}\r\n".encode())
        headers.append(b"Connection: close\r\n\r\n")
        head = b"".join(headers)
        exchange.answer_size = len(head) + size
        if answer.trickle == "headers":
            start = len(headers[0]) + len(b"X-Slow: ")
            self._send(exchange, head[:start])
            self._trickle(exchange, head[start : start + answer.trickle_bytes], answer, stopping)
            self._send(exchange, head[start + answer.trickle_bytes :])
        else:
            self._send(exchange, head)
        if answer.trickle == "body":
            self._trickle(exchange, answer.body, answer, stopping)
        elif answer.size is None:
            self._send(exchange, answer.body)
        else:
            self._send_huge(exchange, answer.body, size, stopping)
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)

    def _send(self, exchange: Exchange, data: bytes) -> None:
        self.connection.sendall(data)
        exchange.bytes_sent += len(data)

    def _trickle(self, exchange, data: bytes, answer: Answer, stopping) -> None:
        for byte in data:
            if stopping.wait(answer.interval):
                raise ConnectionAbortedError("the server stops")
            self._send(exchange, bytes([byte]))

    def _send_huge(self, exchange, pattern: bytes, size: int, stopping) -> None:
        chunk = bytes(itertools.islice(itertools.cycle(pattern or b"x"), HUGE_CHUNK))
        left = size
        while left > 0 and not stopping.is_set():
            piece = chunk[: min(left, len(chunk))]
            self._send(exchange, piece)
            left -= len(piece)


@contextlib.contextmanager
def slow_http_server(answer: Answer | None = None, *, host: str = LOOPBACK, port: int = 0):
    """A running SlowHttpServer on `host` (another loopback address, e.g. 127.0.0.2)."""
    server = SlowHttpServer(answer, host=host, port=port).start()
    try:
        yield server
    finally:
        server.stop()
