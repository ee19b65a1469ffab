"""The HTTP client of the provider backends: a urllib3 connection pool per backend and process.

urllib3 is what requests sends with; the backends use it directly because the
layer requests adds costs more than the rest of a send: posting to a loopback
sink took 0.7 ms of CPU a message with a requests.Session against 0.27 ms with
a urllib3 pool, both kept alive (bench/dispatch.py prints both ceilings).

The pool keeps connections open between messages, lets several send threads
post at once, applies the connect and read timeouts, and never
retries on its own: a failed send is the dispatcher's to retry, with backoff.
"""

import json
from dataclasses import dataclass
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)


class HttpFailure(Exception):
    """No answer: the connection failed, was reset, or the provider did not answer in time."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self):
        """The answer's JSON, or None when the body is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None


class HttpClient:
    def __init__(
        self,
        *,
        timeout: tuple[float, float],
        pool_size: int,
        headers: dict[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
    ):
        self.read_timeout = timeout[1]
        default_headers = dict(headers or {})
        if basic_auth:
            default_headers.update(urllib3.make_headers(basic_auth=":".join(basic_auth)))
        self.pool = urllib3.PoolManager(
            maxsize=pool_size,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            headers=default_headers,
        )

    def post(
        self,
        url: str,
        *,
        form: dict | None = None,
        json_body=None,
        body: bytes | None = None,
        headers: dict | None = None,
    ) -> HttpAnswer:
        """POST a form, a JSON body or bytes as they are; raises HttpFailure when no answer came."""
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
        try:
            response = self.pool.request("POST", url, body=body, headers=headers)
        except ReadTimeoutError as exc:
            raise HttpFailure(f"ReadTimeout: no answer within {self.read_timeout:g} s") from exc
        except NewConnectionError as exc:  # a subclass of ConnectTimeoutError: first
            raise HttpFailure(f"ConnectionError: {exc}") from exc
        except ConnectTimeoutError as exc:
            raise HttpFailure(f"ConnectTimeout: {exc}") from exc
        except HTTPError as exc:
            raise HttpFailure(f"ConnectionError: {exc}") from exc
        return HttpAnswer(response.status, response.data.decode("utf-8", errors="replace"))
