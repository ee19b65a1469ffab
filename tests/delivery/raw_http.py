"""A raw HTTP/1.1 peer on loopback for the outgoing HTTP client's tests: it answers each
POST with the bytes it is given, as they are (interim answers, chunks, compressed bodies,
half an answer), after a delay or never, and records what it was sent."""

import contextlib
import re
import socket
import threading
import time


class RawServer:
    """Answers every POST with `answer` (raw bytes), or with `answer_for(request)` (None:
    never), after `delay` seconds; closes each connection, without a word, after
    `answers_a_connection` answers. Counts connections, and the most requests it held
    unanswered at once."""

    def __init__(
        self,
        answer: bytes,
        *,
        answers_a_connection: int = 1000,
        host="127.0.0.1",
        delay: float = 0.0,
        answer_for=None,
    ):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.create_server((host, 0), family=family)
        self.port = self.listener.getsockname()[1]
        self.answer_for = answer_for or (lambda request: answer)
        self.answers_a_connection = answers_a_connection
        self.delay = delay
        self.connections = 0
        self.requests: list[bytes] = []
        self.answered = threading.Semaphore(0)
        self.unanswered = self.most_unanswered = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.listener.accept()
                self.connections += 1
                threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.settimeout(5)
            pending = b""
            for _ in range(self.answers_a_connection):
                while b"\r\n\r\n" not in pending:
                    data = connection.recv(65536)
                    if not data:
                        return
                    pending += data
                head, _, pending = pending.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
                while len(pending) < length:
                    pending += connection.recv(65536)
                request = head + b"\r\n\r\n" + pending[:length]
                pending = pending[length:]
                with self._lock:
                    self.requests.append(request)
                    self.unanswered += 1
                    self.most_unanswered = max(self.most_unanswered, self.unanswered)
                time.sleep(self.delay)
                answer = self.answer_for(request)
                if answer is None:
                    self._stopping.wait()
                    return
                with self._lock:
                    self.unanswered -= 1
                connection.sendall(answer)
                self.answered.release()

    def stop(self) -> None:
        self._stopping.set()
        self.listener.close()


def answer(body: bytes, *headers: str, status: str = "201 Created") -> bytes:
    head = "".join(f"{header}\r\n" for header in headers)
    return f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
