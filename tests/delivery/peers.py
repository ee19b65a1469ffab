"""Real local peers for the channel backends: an SMTP server and an SMS gateway on loopback.

Nothing of ours is mocked: the backends open real sockets to these servers,
which record what arrived and can be told to misbehave the way providers do.
Both listen on 127.0.0.1 only, on a port the OS picks.
"""

import asyncio
import base64
import contextlib
import email
import email.policy
import json
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from aiosmtpd.controller import Controller

LOOPBACK = "127.0.0.1"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released), for "server down" tests."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# --- SMTP -------------------------------------------------------------------------------


@dataclass
class ReceivedEmail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes  # as received, CRLF line ends
    message: EmailMessage  # parsed with email.policy.default: headers decoded, get_content()
    peer: tuple  # the client's (address, port): one per SMTP connection


class SmtpHandler:
    """aiosmtpd handler that keeps every message and answers RCPT as it is told."""

    def __init__(self):
        self.messages: list[ReceivedEmail] = []
        self.rcpt_replies: dict[str, str] = {}  # lower-cased address -> SMTP reply line
        self.data_delay_seconds = 0.0  # how long the server takes over each message
        self.quits = 0  # connections the client ended with QUIT
        self._lock = threading.Lock()

    async def handle_QUIT(self, server, session, envelope):
        with self._lock:
            self.quits += 1
        return "221 Bye"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay_seconds:
            await asyncio.sleep(self.data_delay_seconds)
        raw = envelope.content
        received = ReceivedEmail(
            peer=tuple(session.peer),
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
            # SMTP's CRLF line ends become "\n", what the email package's default policy uses.
            message=email.message_from_bytes(
                raw.replace(b"\r\n", b"\n"), policy=email.policy.default
            ),
        )
        with self._lock:
            self.messages.append(received)
        return "250 2.0.0 Message accepted for delivery"


class _LoopbackController(Controller):
    # Controller needs its port up front; bind port 0 and read back the one the OS chose,
    # so parallel test runs never race for a "free" port.
    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """A real SMTP server on 127.0.0.1. `messages` holds what it accepted, in order.

    `idle_timeout`: the server closes a connection idle that long (421, then hangs up).
    `refuse(address)` makes RCPT TO of that address fail with 550 (permanent),
    `defer(address)` with 451 (transient). `slow_down(seconds)` makes it take that
    long over each message before accepting it (other connections go on meanwhile).
    """

    def __init__(self, idle_timeout: float = 300):
        self.handler = SmtpHandler()
        self.controller = _LoopbackController(
            self.handler,
            hostname=LOOPBACK,
            port=0,
            server_hostname="smtp.test.local",
            ready_timeout=5,
            # A connection idle this long is closed by the server (421 first), as real
            # servers do.
            timeout=idle_timeout,
        )
        self.host = LOOPBACK
        self.port = 0

    def start(self) -> "SmtpServer":
        self.controller.start()
        self.port = self.controller.port
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[ReceivedEmail]:
        return list(self.handler.messages)

    @property
    def connections(self) -> int:
        """How many SMTP connections brought the messages accepted."""
        return len({message.peer for message in self.handler.messages})

    @property
    def quits(self) -> int:
        """How many connections the client ended politely, with QUIT."""
        return self.handler.quits

    def slow_down(self, seconds: float) -> None:
        self.handler.data_delay_seconds = seconds

    def refuse(self, address: str, reply: str = "") -> None:
        self.handler.rcpt_replies[address.lower()] = (
            reply or f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        )

    def defer(self, address: str, reply: str = "") -> None:
        self.handler.rcpt_replies[address.lower()] = (
            reply or f"451 4.7.1 <{address}>: Mailbox busy, try again later"
        )


class TricklingServer:
    """A TCP server on 127.0.0.1 that answers every connection one byte at a time (a byte
    every `interval` seconds of an SMTP greeting that does not end for `lasts` seconds):
    each read gets a byte well within any timeout, so only a total deadline stops a client."""

    def __init__(self, interval: float = 0.2, lasts: float = 60):
        self.interval = interval
        self.lasts = lasts
        self.connections = 0
        self._stopping = threading.Event()
        self._listener = socket.create_server((LOOPBACK, 0))
        self.host, self.port = LOOPBACK, self._listener.getsockname()[1]
        self.hung_up = threading.Event()  # set when a client closed its connection

    def start(self) -> "TricklingServer":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.sendall(b"220-")
                ends = time.monotonic() + self.lasts
                while not self._stopping.wait(self.interval) and time.monotonic() < ends:
                    connection.sendall(b"x")
            except OSError:
                self.hung_up.set()


# --- SMS gateway ------------------------------------------------------------------------

TWILIO_PATH_PREFIX = "/2010-04-01/Accounts/"
GENERIC_PATH = "/api/v1/sms"
IDEMPOTENCY_HEADERS = ("I-Twilio-Idempotency-Token", "Idempotency-Key")
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "a-twilio-auth-token"
BEARER_TOKEN = "a-gateway-token"

# What the sink answers in each misbehaviour: (status, JSON answer), Twilio's error shapes.
TWILIO_ERRORS = {
    "500": (500, {"code": 20500, "message": "Internal Server Error", "status": 500}),
    "503": (503, {"code": 20503, "message": "Service Unavailable", "status": 503}),
    "429": (429, {"code": 20429, "message": "Too Many Requests", "status": 429}),
    "400": (
        400,
        {
            "code": 21211,
            "message": "The 'To' number +6200000 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        },
    ),
    "401": (
        401,
        {
            "code": 20003,
            "message": "Authenticate",
            "detail": "Your AccountSid or AuthToken was incorrect.",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        },
    ),
}
FAULTS = (*TWILIO_ERRORS, "garbage", "not-an-object", "slow", "reset")


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # as sent; look up with `header()` for case-insensitivity
    body: bytes
    form: dict[str, str]  # form-encoded body, one value per name
    json: object  # JSON body, or None
    connection_id: int  # which TCP connection it came on (1, 2, …)
    status: int = 0  # what the sink answered (0: no answer, the connection was reset)

    def header(self, name: str, default: str = "") -> str:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return default

    @property
    def idempotency_key(self) -> str:
        for name in IDEMPOTENCY_HEADERS:
            if value := self.header(name):
                return value
        return ""

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, credentials = self.header("Authorization").partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(credentials).decode().partition(":")
        return user, password

    @property
    def bearer_token(self) -> str:
        scheme, _, token = self.header("Authorization").partition(" ")
        return token if scheme.lower() == "bearer" else ""


@dataclass
class AcceptedMessage:
    sid: str
    idempotency_key: str
    fields: dict  # the form (Twilio) or JSON object (generic gateway) as received


class SmsSink:
    """A stand-in for Twilio's Messages API (and a generic JSON SMS gateway) on 127.0.0.1.

    Twilio: POST {url}/2010-04-01/Accounts/{account_sid}/Messages.json, form-encoded
    To/From/Body, HTTP basic auth (account_sid, auth_token) -> 201 {"sid": "SM…", …}.
    Generic: POST {url}/api/v1/sms, JSON body (any field names), Bearer `bearer_token`
    -> 201 {"message_id": "gw-…", "status": "accepted"}.

    `requests` is every request received, `messages` every distinct message accepted:
    a repeated idempotency key is answered with the first answer and not accepted again.
    `connections` counts the TCP connections accepted.
    `misbehave(fault, times=1)` makes the next `times` requests fail, see FAULTS.
    `before_answer(answer)`, when set, runs before each new message's answer goes out.
    """

    def __init__(
        self,
        *,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        bearer_token: str = BEARER_TOKEN,
    ):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.bearer_token = bearer_token
        self.requests: list[ReceivedRequest] = []
        self.messages: list[AcceptedMessage] = []
        self.connections = 0
        self.slow_seconds = 3.0
        self.retry_after = 1
        # Called with each new answer (a dict) after the message is accepted and before
        # the answer is sent: to post a delivery receipt ahead of the answer, say.
        self.before_answer = None
        self._faults: list[str] = []
        self._by_key: dict[str, AcceptedMessage] = {}
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _SinkServer((LOOPBACK, 0), _SinkHandler, sink=self)
        self.port = self._server.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def twilio_url(self) -> str:
        return f"{self.url}{TWILIO_PATH_PREFIX}{self.account_sid}/Messages.json"

    @property
    def generic_url(self) -> str:
        return f"{self.url}{GENERIC_PATH}"

    def twilio_options(self, **overrides) -> dict:
        """OPTIONS for TwilioSmsBackend pointed at this sink (for KOKATTO_CHANNEL_BACKENDS)."""
        return {
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "sender_id": "BANKDEMO",
            "base_url": self.url,
            "timeout": (1, 1),
            **overrides,
        }

    def generic_backend(self, **options) -> dict:
        """A KOKATTO_CHANNEL_BACKENDS entry: HttpSmsBackend sending JSON to this sink."""
        return {
            "BACKEND": "notifications.backends.http_sms.HttpSmsBackend",
            "OPTIONS": {
                "url": self.generic_url,
                "encoding": "json",
                "token": self.bearer_token,
                "message_id_field": "message_id",
                **options,
            },
        }

    def start(self) -> "SmsSink":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes a handler that is being slow on purpose
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        # Handler threads wait on idle keep-alive connections; end them now.
        with self._lock:
            open_connections = list(self._open)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def misbehave(self, fault: str, times: int = 1) -> None:
        """Answer the next `times` requests with `fault`, one of FAULTS:

        "500", "503", "429" (with Retry-After: `retry_after`), "400" (Twilio 21211, not a
        valid phone number), "401" (Twilio 20003): that status and Twilio's error JSON;
        "garbage": accept the message, answer 201 with a non-JSON body;
        "not-an-object": accept the message, answer 201 with valid JSON that is not an
        object (the string "queued");
        "slow": accept the message, answer after `slow_seconds` (beyond the read timeout);
        "reset": read the request, then reset the connection without answering.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        with self._lock:
            self._faults.extend([fault] * times)

    # Called by the handler threads.

    def _connected(self, connection: socket.socket) -> int:
        with self._lock:
            self.connections += 1
            self._open.add(connection)
            return self.connections

    def _disconnected(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.discard(connection)

    def _next_fault(self) -> str:
        with self._lock:
            return self._faults.pop(0) if self._faults else ""

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _accept(self, request: ReceivedRequest, fields: dict) -> AcceptedMessage:
        """The message of `request`, accepted once per idempotency key."""
        key = request.idempotency_key
        with self._lock:
            if key and key in self._by_key:
                return self._by_key[key]
            message = AcceptedMessage(
                sid="SM" + secrets.token_hex(16), idempotency_key=key, fields=fields
            )
            self.messages.append(message)
            if key:
                self._by_key[key] = message
            return message


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True
    # Shutdown waits on none of the handler threads (a slow one is woken by stop()).
    block_on_close = False

    def __init__(self, address, handler, *, sink: SmsSink):
        self.sink = sink
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        # A client that gave up (read timeout) or a connection we reset ourselves is expected.
        pass


class _SinkHandler(BaseHTTPRequestHandler):
    # Keep-alive, as real providers do: one connection serves many requests.
    protocol_version = "HTTP/1.1"
    server_version = "KokattoSmsSink/1.0"
    # An idle keep-alive connection frees its thread after this long.
    timeout = 5

    def setup(self):
        super().setup()
        # One handler instance per TCP connection: count them here.
        self.connection_id = self.sink._connected(self.connection)

    def finish(self):
        self.sink._disconnected(self.connection)
        super().finish()

    def log_message(self, format, *args):
        pass

    @property
    def sink(self) -> SmsSink:
        return self.server.sink

    def do_GET(self):
        self._answer(HTTPStatus.METHOD_NOT_ALLOWED, {"message": "Method not allowed"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        parsed_json = None
        form = {}
        if "json" in content_type:
            try:
                parsed_json = json.loads(body)
            except ValueError:
                parsed_json = None
        else:
            form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        request = ReceivedRequest(
            method="POST",
            path=self.path,
            headers=dict(self.headers.items()),
            body=body,
            form=form,
            json=parsed_json,
            connection_id=self.connection_id,
        )
        self.sink._record(request)
        self._handle(request)

    def _handle(self, request: ReceivedRequest) -> None:
        sink = self.sink
        fault = sink._next_fault()
        if fault == "reset":
            # SO_LINGER 0 makes close() send a RST instead of an orderly FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if fault in TWILIO_ERRORS:
            status, answer = TWILIO_ERRORS[fault]
            headers = {"Retry-After": str(sink.retry_after)} if fault == "429" else {}
            if fault == "401":
                headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            self._answer(status, answer, request=request, headers=headers)
            return

        if request.path.startswith(TWILIO_PATH_PREFIX):
            fields = self._twilio_fields(request)
        elif request.path == GENERIC_PATH:
            fields = self._generic_fields(request)
        else:
            self._answer(404, {"code": 20404, "message": "Not Found", "status": 404}, request)
            return
        if fields is None:  # already answered: authentication or validation failed
            return

        message = sink._accept(request, fields)
        if request.path == GENERIC_PATH:
            answer = {"message_id": "gw-" + message.sid[2:], "status": "accepted"}
        else:
            answer = self._twilio_answer(message)
        if sink.before_answer is not None:
            sink.before_answer(answer)
        # The provider has the message; its answer comes too late for the client.
        if fault == "slow" and sink._stopping.wait(sink.slow_seconds):
            return
        if fault == "garbage":
            self._answer(201, b"<html><body>Message queued</body></html>", request=request)
            return
        if fault == "not-an-object":
            answer = "queued"
        self._answer(201, answer, request=request)

    def _twilio_fields(self, request: ReceivedRequest) -> dict | None:
        sink = self.sink
        expected_path = f"{TWILIO_PATH_PREFIX}{sink.account_sid}/Messages.json"
        if request.basic_auth != (sink.account_sid, sink.auth_token):
            status, answer = TWILIO_ERRORS["401"]
            headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            self._answer(status, answer, request=request, headers=headers)
            return None
        if request.path != expected_path:
            self._answer(404, {"code": 20404, "message": "Not Found", "status": 404}, request)
            return None
        form = request.form
        if not form.get("To") or not form.get("From") or not form.get("Body"):
            answer = {
                "code": 21604,
                "message": "A 'To', 'From' and 'Body' parameter is required.",
                "status": 400,
            }
            self._answer(400, answer, request=request)
            return None
        return form

    def _generic_fields(self, request: ReceivedRequest) -> dict | None:
        if request.bearer_token != self.sink.bearer_token:
            self._answer(401, {"message": "invalid token"}, request=request)
            return None
        if not isinstance(request.json, dict):
            self._answer(400, {"message": "a JSON object is required"}, request=request)
            return None
        # Any field names: the backend maps ours to the gateway's.
        return request.json

    def _twilio_answer(self, message: AcceptedMessage) -> dict:
        sink = self.sink
        return {
            "sid": message.sid,
            "account_sid": sink.account_sid,
            "to": message.fields["To"],
            "from": message.fields["From"],
            "body": message.fields["Body"],
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": formatdate(usegmt=True),
            "price": None,
            "error_code": None,
            "error_message": None,
            "uri": f"{TWILIO_PATH_PREFIX}{sink.account_sid}/Messages/{message.sid}.json",
        }

    def _answer(self, status, answer, request=None, headers=None) -> None:
        if isinstance(answer, bytes):  # not JSON
            payload, content_type = answer, "text/html"
        else:
            payload, content_type = json.dumps(answer).encode(), "application/json"
        if request is not None:
            request.status = int(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        # Content-Length on every answer keeps the connection reusable.
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
