"""The outgoing HTTP client itself (notifications/backends/http.py): what it keeps between
posts, what it writes and how it reads an answer, against a raw HTTP server on loopback.

Each test runs twice: with HttpClient.post (one post on the caller's thread, as client
callbacks and WhatsApp send), and through post_side_by_side (how the dispatcher sends a
group to an SMS gateway: notifications/backends/http_side_by_side.py)."""

import gzip
import os
import time
import zlib

import pytest

from notifications.backends.http import HttpClient, HttpFailure, KeptConnections, encoded_body
from notifications.backends.http_side_by_side import Post, post_side_by_side
from tests.delivery.raw_http import answer


class SideBySide(HttpClient):
    """HttpClient whose post goes through post_side_by_side, a group of one."""

    def post(self, url, *, form=None, json_body=None, body=None, headers=None):
        body, content_type = encoded_body(form=form, json_body=json_body, body=body)
        [(result, _)] = post_side_by_side(
            self, [Post(url, body, content_type, headers or {})], ready=ready_now, tick=lambda: 60
        )
        if isinstance(result, HttpFailure):
            raise result
        return result


def ready_now(index: int) -> float:
    return time.monotonic()


@pytest.fixture(params=[HttpClient, SideBySide], ids=["post", "side-by-side"])
def client(request):
    return lambda: request.param(timeout=(2, 5), max_answer_bytes=4096, pool_size=2)


def test_posts_to_one_peer_share_one_kept_connection(raw_server, client):
    server = raw_server(answer(b'{"id": 1}'))
    http = client()

    answers = [http.post(f"http://127.0.0.1:{server.port}/sms", form={"n": n}) for n in range(5)]

    assert [a.json() for a in answers] == [{"id": 1}] * 5
    assert server.connections == 1


def test_a_kept_connection_the_peer_closed_meanwhile_is_not_posted_on(raw_server, client):
    # A peer that ends idle connections quietly (a keep-alive timeout): the next post must
    # go out on a new connection, not fail on the dead one.
    server = raw_server(answer(b"{}"), answers_a_connection=1)
    http = client()
    url = f"http://127.0.0.1:{server.port}/sms"

    first = http.post(url, form={"n": 1})
    assert server.answered.acquire(timeout=5)
    second = http.post(url, form={"n": 2})

    assert (first.status, second.status) == (201, 201)
    assert server.connections == 2
    assert len(server.requests) == 2


def test_an_answer_that_says_close_is_not_kept(raw_server, client):
    server = raw_server(answer(b"{}", "Connection: close"))
    http = client()

    for n in range(3):
        http.post(f"http://127.0.0.1:{server.port}/sms", form={"n": n})

    assert server.connections == 3


def test_a_request_goes_out_with_its_host_length_and_headers(raw_server, client):
    server = raw_server(answer(b"{}"))

    client().post(
        f"http://127.0.0.1:{server.port}/api/sms?account=7",
        json_body={"to": "+6281234567890"},
        headers={"Idempotency-Key": "k-1"},
    )

    [request] = server.requests
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api/sms?account=7 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines
    assert "Content-Type: application/json" in lines
    assert "Idempotency-Key: k-1" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert body == b'{"to": "+6281234567890"}'


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\x00b"])
def test_a_header_value_that_would_start_a_new_line_is_refused_before_sending(
    raw_server, value, client
):
    server = raw_server(answer(b"{}"))

    with pytest.raises(HttpFailure, match=r"^Invalid request: header 'X-Ref'"):
        client().post(f"http://127.0.0.1:{server.port}/", form={}, headers={"X-Ref": value})

    assert server.connections == 0


def test_a_deflated_answer_is_read_unpacked(raw_server, client):
    server = raw_server(answer(zlib.compress(b'{"id": "d-1"}'), "Content-Encoding: deflate"))

    got = client().post(f"http://127.0.0.1:{server.port}/", form={})

    assert (got.json(), got.cut) == ({"id": "d-1"}, "")


def test_an_answer_in_an_encoding_it_cannot_unpack_keeps_its_status_and_says_why(
    raw_server, client
):
    server = raw_server(answer(b"\x8b\x00", "Content-Encoding: br"))

    got = client().post(f"http://127.0.0.1:{server.port}/", form={})

    assert (got.status, got.text, got.cut) == (201, "", "answer in 'br' encoding, not read")


def test_a_chunked_answer_is_read_and_its_connection_kept(raw_server, client):
    chunked = (
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
    )
    server = raw_server(chunked)
    http = client()

    answers = [http.post(f"http://127.0.0.1:{server.port}/", form={}) for _ in range(2)]

    assert [a.json() for a in answers] == [{"a": 1}, {"a": 1}]
    assert server.connections == 1


def test_a_chunked_answer_past_the_cap_is_not_read_and_not_kept(raw_server, client):
    big = b"x" * 5000
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (
        len(big),
        big,
    )
    server = raw_server(chunked)
    http = client()

    first = http.post(f"http://127.0.0.1:{server.port}/", form={})
    http.post(f"http://127.0.0.1:{server.port}/", form={})

    assert (first.status, first.text, first.cut) == (200, "", "answer over 4096 bytes, not read")
    assert server.connections == 2


def test_a_peer_given_by_its_ipv6_address_is_reached(raw_server, client):
    try:
        server = raw_server(answer(b"{}"), host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")

    got = client().post(f"http://[::1]:{server.port}/sms", form={})

    assert got.status == 201
    assert f"Host: [::1]:{server.port}".encode() in server.requests[0]


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x", "http:///nohost", "http://exa mple.com/", "http://[::1/x"]
)
def test_a_url_it_cannot_post_to_fails_as_an_invalid_url(url, client):
    with pytest.raises(HttpFailure, match=r"^Invalid URL: "):
        client().post(url, form={})


def test_a_line_break_in_a_urls_path_is_sent_escaped_never_as_a_new_header(raw_server, client):
    server = raw_server(answer(b"{}"))

    client().post(f"http://127.0.0.1:{server.port}/a\r\nX-Injected: 1", form={})

    [request] = server.requests
    assert request.startswith(b"POST /a%0D%0AX-Injected:%201 HTTP/1.1\r\n")
    assert b"\r\nX-Injected" not in request


def test_an_interim_answer_is_skipped_and_each_request_gets_its_own_answer(raw_server, client):
    # http.client skips only 100: a 103 read as the answer would leave the real one to be
    # read as the next request's (and credit it with this message's id).
    early_hints = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
    server = raw_server(early_hints + answer(b'{"id": "gw-1"}'))
    http = client()

    answers = [http.post(f"http://127.0.0.1:{server.port}/sms", form={}) for _ in range(2)]

    assert [(a.status, a.json()) for a in answers] == [(201, {"id": "gw-1"})] * 2


def test_it_asks_for_an_answer_in_no_encoding(raw_server, client):
    server = raw_server(answer(b"{}"))

    client().post(f"http://127.0.0.1:{server.port}/", form={})

    assert b"\r\nAccept-Encoding: identity\r\n" in server.requests[0]


def test_a_deflated_answer_without_zlibs_header_is_read_unpacked(raw_server, client):
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = packer.compress(b'{"id": "raw-1"}') + packer.flush()
    server = raw_server(answer(raw, "Content-Encoding: deflate"))

    got = client().post(f"http://127.0.0.1:{server.port}/", form={})

    assert (got.json(), got.cut) == ({"id": "raw-1"}, "")


def test_a_compressed_answer_broken_off_midway_is_not_taken_for_whole(raw_server, client):
    packed = gzip.compress(bytes(range(256)) * 40)
    head = (
        f"HTTP/1.1 201 Created\r\nContent-Encoding: gzip\r\nContent-Length: {len(packed)}\r\n\r\n"
    )
    server = raw_server(head.encode() + packed[: len(packed) // 2], answers_a_connection=1)

    got = client().post(f"http://127.0.0.1:{server.port}/", form={})

    assert (got.status, got.text) == (201, "")
    assert got.cut.startswith("answer broken off")


def test_a_connection_idle_too_long_is_not_posted_on(raw_server, monkeypatch, client):
    # A NAT may forget an idle connection without a word; the next request on it would
    # wait out its deadline.
    monkeypatch.setattr(KeptConnections, "MAX_IDLE_SECONDS", 0.2)
    server = raw_server(answer(b"{}"))
    http = client()

    http.post(f"http://127.0.0.1:{server.port}/", form={})
    time.sleep(0.3)
    http.post(f"http://127.0.0.1:{server.port}/", form={})

    assert server.connections == 2


def test_a_forked_process_opens_its_own_connections(raw_server, client):
    server = raw_server(answer(b"{}"))
    http = client()
    url = f"http://127.0.0.1:{server.port}/"
    http.post(url, form={})

    child = os.fork()
    if child == 0:  # the child reports through its exit code, and never returns
        posted = False
        try:
            posted = http.post(url, form={}).status == 201
        finally:
            os._exit(0 if posted else 1)
    _, code = os.waitpid(child, 0)
    http.post(url, form={})

    assert os.waitstatus_to_exitcode(code) == 0
    # The child's own connection; the parent's kept one still serves the parent.
    assert server.connections == 2
    assert len(server.requests) == 3


def test_a_host_name_that_cannot_be_one_fails_as_an_invalid_url(client):
    with pytest.raises(HttpFailure, match=r"^Invalid URL: "):
        client().post(f"http://{'a' * 64}.example/", form={})


def test_an_answer_nested_too_deep_for_json_is_read_as_no_json(raw_server, client):
    server = raw_server(answer(b"[" * 2000 + b"]" * 2000))

    got = client().post(f"http://127.0.0.1:{server.port}/", form={})

    assert (got.status, got.json()) == (201, None)
