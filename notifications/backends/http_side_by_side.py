"""Many POSTs side by side on one thread: a dispatcher group's sends to one provider.

A group's sends ran on DELIVERY_SEND_CONCURRENCY threads until issue 20. A post
mostly waits, and threads that each wake for a few microseconds of Python contend
for the interpreter's lock: against a loopback sink a post cost 183 µs of CPU on
eight threads and 106 µs on one. Here one thread keeps up to that many posts in
flight: it writes each request as soon as a connection is free, waits for whichever
answer comes with a selector, and feeds what arrives to httptools' parser (llhttp,
Node.js's HTTP parser, in C: a microsecond an answer, where http.client's takes
fifteen).

The bounds are HttpClient.post's: connecting within the connect timeout (on this
thread, as post connects), a total deadline for each exchange, kept by the loop's
own clock, at most `max_answer_bytes` of each answer's body (unpacked, when it
came compressed), a connection kept for the next posts only when its answer was
read whole. What the sockets hold is read before any deadline is applied: an
answer that came in time is never judged late because the loop was busy.
"""

import contextlib
import logging
import math
import selectors
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

import httptools

from notifications.backends.http import (
    HttpAnswer,
    HttpClient,
    HttpFailure,
    Peer,
    Unpacker,
    connection_failure,
    no_answer_in_time,
    peer_of,
    too_big,
)


class Post(NamedTuple):
    url: str
    body: bytes
    content_type: str
    headers: dict[str, str]


Result = HttpAnswer | HttpFailure | None

logger = logging.getLogger(__name__)

# What one read takes from a socket.
READ_BYTES = 64 * 1024


def post_side_by_side(
    client: HttpClient,
    posts: list[Post | None],
    *,
    ready: Callable[[int], float | None],
    tick: Callable[[], float],
) -> list[tuple[Result, float]]:
    """POST each of `posts` (None: nothing to post), up to `client.pool_size` at once,
    on this thread.

    `ready(i)`, called just before post i goes out, returns when its deadline counts
    from (a time.monotonic() value: a wait for the provider's rate may come first),
    or None to leave it unsent; if it raises, post i fails alone. `tick()` is called
    whenever it is due, and returns how many seconds it can wait until it is called
    again (the dispatcher renews its leases there); if it raises, no more posts start,
    and those in flight are finished (an acceptance must be known, to be recorded).
    Returns, for each post, its answer, its failure or None (not sent), and the
    seconds the exchange took.
    """
    return _SideBySide(client, posts, ready, tick).run()


class _SideBySide:
    def __init__(self, client: HttpClient, posts: list[Post | None], ready, tick):
        self.client, self.posts, self.ready, self.tick = client, posts, ready, tick
        self.results: list[tuple[Result, float]] = [(None, 0.0)] * len(posts)
        self.waiting = deque(range(len(posts)))
        self.flying: dict[int, _Exchange] = {}  # by socket file descriptor
        self.selector = selectors.DefaultSelector()
        self.next_tick = 0.0
        self.ticking = True  # until tick() fails

    def run(self) -> list[tuple[Result, float]]:
        try:
            while self.waiting or self.flying:
                self._tick_if_due()
                self._start_what_fits()
                if self.flying:
                    self._wait_and_read()
                    self._settle()
            return self.results
        finally:
            for exchange in self.flying.values():
                exchange.abandon()
            self.selector.close()

    def _tick_if_due(self) -> None:
        if not self.ticking or time.monotonic() < self.next_tick:
            return
        try:
            self.next_tick = time.monotonic() + self.tick()
        except Exception:
            logger.exception("The caller's tick failed: no more posts of this group start")
            self.ticking = False
            self.waiting.clear()
            self.next_tick = math.inf

    def _start_what_fits(self) -> None:
        while self.waiting and len(self.flying) < self.client.pool_size:
            self._tick_if_due()  # a wait in ready() or a connect may have taken a while
            if not self.waiting:
                return
            index = self.waiting.popleft()
            exchange = self._started(index)
            if exchange is not None:
                self.flying[exchange.fd] = exchange
                self.selector.register(exchange.fd, exchange.events(), exchange)

    def _started(self, index: int) -> "_Exchange | None":
        """Post `index` under way on a connection, or None (its result set, or left unsent)."""
        client, post = self.client, self.posts[index]
        if post is None:
            return None
        try:
            started = self.ready(index)
        except Exception as exc:
            logger.exception("Post %d of a group could not start", index)
            self.results[index] = (HttpFailure(f"{type(exc).__name__}: {exc}"), 0.0)
            return None
        if started is None:
            return None
        when = started + client.deadline
        try:
            peer = peer_of(post.url)
            request = client.request(peer, post.content_type, post.headers, post.body)
            connection = client.kept.take(peer) or client.connect(peer, when)
        except HttpFailure as failure:
            self.results[index] = (failure, time.monotonic() - started)
            return None
        if time.monotonic() >= when:  # no time left to send it in
            client.kept.keep(peer, connection)
            self.results[index] = (no_answer_in_time(client.deadline), time.monotonic() - started)
            return None
        connection.setblocking(False)
        exchange = _Exchange(index, peer, connection, request, started, when, client)
        exchange.write()
        return exchange

    def _wait_and_read(self) -> None:
        now = time.monotonic()
        wake = min(min(e.when for e in self.flying.values()), self.next_tick)
        for key, _ in self.selector.select(max(0.0, wake - now)):
            key.data.on_ready()

    def _settle(self) -> None:
        """Judge the deadlines, after reading what the sockets hold; finish what is over."""
        now = time.monotonic()
        for exchange in list(self.flying.values()):
            if not exchange.over and now >= exchange.when:
                exchange.read(drain=True)  # all of what came in time, before judging
                if not exchange.over:
                    exchange.expire()
            if exchange.over:
                self.selector.unregister(exchange.fd)
                del self.flying[exchange.fd]
                result = exchange.finish(self.client)
                self.results[exchange.index] = (result, now - exchange.started)
            elif exchange.events_changed:
                self.selector.modify(exchange.fd, exchange.events(), exchange)


class _Exchange:
    """One post in flight: its request going out, then its answer coming in.

    httptools calls the on_* methods as it parses what arrives. An interim answer
    (1xx) is passed over, as HttpClient.post does.
    """

    MAX_INTERIM_ANSWERS = 10
    # What http.client allows an answer's head: a peer streaming headers for ever would
    # otherwise hold memory and a core until the deadline.
    MAX_HEAD_BYTES = 64 * 1024
    MAX_HEADERS = 100

    def __init__(self, index, peer: Peer, connection, request: bytes, started, when, client):
        self.index, self.peer, self.connection = index, peer, connection
        self.fd = connection.fileno()
        self.unsent = memoryview(request)
        self.started, self.when = started, when
        self.deadline, self.cap = client.deadline, client.max_answer_bytes
        self.parser = httptools.HttpResponseParser(self)
        # As lenient as http.client, which read these answers before: a connection with
        # an answer framed two ways (Content-Length and chunked) is never reused.
        self.parser.set_dangerous_leniencies(
            lenient_headers=True,
            lenient_chunked_length=True,
            lenient_transfer_encoding=True,
            lenient_optional_cr_before_lf=True,
            lenient_data_after_close=True,
            lenient_optional_crlf_after_chunk=True,
            lenient_spaces_after_chunk_size=True,
        )
        self.head_bytes = self.headers_read = 0
        self.interim_answers = 0
        self.events_changed = False
        self.over = False  # answered, failed or cut: nothing more to read
        self.failure: HttpFailure | None = None
        self.status = 0  # the final answer's, once its headers are in
        self.cut = ""
        self.complete = False
        self.reusable = True
        self._new_answer()

    def _new_answer(self) -> None:
        self.declared = None  # Content-Length
        self.chunked = False
        self.encoding = "identity"
        self.body = bytearray()
        self.unpacker: Unpacker | None = None

    def events(self) -> int:
        self.events_changed = False
        return selectors.EVENT_WRITE if self.unsent else selectors.EVENT_READ

    # --- the request

    def write(self) -> None:
        try:
            sent = self.connection.send(self.unsent)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        self.unsent = self.unsent[sent:]
        if not self.unsent:
            self.events_changed = True

    def on_ready(self) -> None:
        if self.unsent:
            self.write()
        else:
            self.read()

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.close()

    # --- the answer

    def read(self, *, drain: bool = False) -> None:
        """Read what has come; all of it when `drain`, else what one wake-up brings (a
        full read, or TLS holding decrypted bytes, means there may be more)."""
        while not self.over:
            try:
                data = self.connection.recv(READ_BYTES)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except OSError as exc:
                self._fail(exc)
                return
            if not data:
                self._on_end()
                return
            self._parse(data)
            pending = isinstance(self.connection, ssl.SSLSocket) and self.connection.pending()
            if not (drain or pending or len(data) == READ_BYTES):
                return

    def _parse(self, data: bytes) -> None:
        if not self.status:
            self.head_bytes += len(data)
            if self.head_bytes > self.MAX_HEAD_BYTES:
                self._unreadable(ValueError(f"a head over {self.MAX_HEAD_BYTES} bytes"))
                return
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # HttpParserError; HttpParserUpgrade (a 101) is none
            self._unreadable(exc)

    def _unreadable(self, exc: Exception) -> None:
        """The parser gave up. A status line already read is the answer (a 201 means the
        message was taken); without one there is none."""
        self.reusable = False
        if self.complete:
            return  # what followed the answer is no concern of it
        status = self.status or self.parser.get_status_code()
        if status >= 200 or status == 101:
            self.status = status
            self._cut(f"answer broken off (unreadable: {exc})")
        else:
            self._fail_with(f"Connection failed: unreadable answer ({exc})", exc)

    def on_message_begin(self) -> None:
        if self.complete:  # more after the answer: no peer may send that
            self.reusable = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers_read += 1
        if self.headers_read > self.MAX_HEADERS:
            raise ValueError(f"more than {self.MAX_HEADERS} headers")
        name = name.lower()
        if name == b"content-length":
            with contextlib.suppress(ValueError):
                self.declared = int(value)
        elif name == b"transfer-encoding":
            self.chunked = self.chunked or b"chunked" in value.lower()
        elif name == b"content-encoding":
            self.encoding = value.decode("latin-1").strip().lower()
        elif name == b"connection" and b"close" in value.lower():
            self.reusable = False

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # interim: on_message_complete passes over it
        self.status = status
        if self.parser.get_http_version() != "1.1" or status < 200:
            self.reusable = False
        if self.declared is not None and self.chunked:
            self.reusable = False  # framed two ways: the peer and this may disagree
        if self.declared is not None and self.declared > self.cap:
            self._cut(too_big(self.cap))
        elif self.encoding != "identity":
            self.unpacker = Unpacker(self.encoding, self.cap)

    def on_body(self, chunk: bytes) -> None:
        if self.over:
            return
        if self.unpacker is not None:
            self.unpacker.feed(chunk)
            if self.unpacker.cut:
                self._cut(self.unpacker.cut)
        elif len(self.body) + len(chunk) > self.cap:
            self._cut(too_big(self.cap))
        else:
            self.body += chunk

    def on_message_complete(self) -> None:
        if not self.status:  # an interim answer
            self.interim_answers += 1
            if self.interim_answers > self.MAX_INTERIM_ANSWERS:
                self._fail_with("Connection failed: interim answers without end", None)
            self._new_answer()
            return
        self.complete = True
        self.over = True

    def _on_end(self) -> None:
        """The peer closed the connection."""
        self.reusable = False
        if self.status and self.declared is None and not self.chunked:
            self.complete = self.over = True  # a body that ends with its connection
        elif self.status:
            self._cut("answer broken off (the connection ended)")
        else:
            self._fail_with(
                "Connection failed: RemoteDisconnected: the peer closed the connection "
                "without answering",
                None,
            )

    def expire(self) -> None:
        """The deadline passed before the answer was in."""
        if self.status:
            self._cut(f"answer not whole within {self.deadline:g} s")
        else:
            self._failed(no_answer_in_time(self.deadline), None)

    def _cut(self, why: str) -> None:
        self.cut, self.over, self.reusable = why, True, False

    def _fail(self, exc: OSError) -> None:
        if self.status:  # the status is the answer (a 201 means the message was taken)
            self._cut(f"answer broken off ({type(exc).__name__})")
        else:
            self._failed(connection_failure(exc), exc)

    def _fail_with(self, text: str, exc: Exception | None) -> None:
        self._failed(HttpFailure(text), exc)

    def _failed(self, failure: HttpFailure, exc: Exception | None) -> None:
        self.failure = failure
        self.failure.__cause__ = exc
        self.over, self.reusable = True, False

    def finish(self, client: HttpClient) -> Result:
        """The exchange's result; its connection kept for another post, or closed."""
        if self.complete and self.reusable and not self.cut:
            self.connection.settimeout(client.deadline)  # as HttpClient.post uses it
            client.kept.keep(self.peer, self.connection)
        else:
            with contextlib.suppress(OSError):
                self.connection.close()
        if self.failure is not None:
            return self.failure
        data, cut = (b"", self.cut) if self.cut else (bytes(self.body), "")
        if not cut and self.unpacker is not None:
            data, cut = self.unpacker.result()
        return HttpAnswer(self.status, data.decode("utf-8", errors="replace"), cut)
