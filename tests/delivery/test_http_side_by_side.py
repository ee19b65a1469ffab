"""A group's posts side by side on one thread (notifications/backends/http_side_by_side.py):
what one slow or silent peer may cost the others, how many go at once, and when a deadline
is judged. The single-post behaviour (caps, encodings, interim answers) is in
test_http_client.py, which runs through this path too."""

import json
import threading
import time
from urllib.parse import urlencode

import pytest

from notifications.backends.http import HttpAnswer, HttpClient, HttpFailure
from notifications.backends.http_side_by_side import Post, post_side_by_side
from tests.delivery.raw_http import answer
from tests.security.tls_server import tls_server, write_test_ca_and_server_certificate


def client(pool_size: int = 4, deadline: float = 1.0) -> HttpClient:
    return HttpClient(timeout=(1, deadline), max_answer_bytes=4096, pool_size=pool_size)


def posts(server, count: int) -> list[Post]:
    url = f"http://127.0.0.1:{server.port}/sms"
    form = "application/x-www-form-urlencoded"
    return [Post(url, urlencode({"n": n}).encode(), form, {"X-N": str(n)}) for n in range(count)]


def ready_now(index: int) -> float:
    return time.monotonic()


def no_tick() -> float:
    return 60.0


def numbered_answer(request: bytes) -> bytes:
    number = request.split(b"X-N: ")[1].split(b"\r\n")[0]
    return answer(b'{"id": "gw-%s"}' % number)


def test_every_post_gets_its_own_answer(raw_server):
    server = raw_server(answer_for=numbered_answer)

    results = post_side_by_side(client(), posts(server, 10), ready=ready_now, tick=no_tick)

    assert [answer.json() for answer, _ in results] == [{"id": f"gw-{n}"} for n in range(10)]
    assert server.connections <= 4


def test_a_silent_peer_fails_its_own_post_alone_at_its_deadline(raw_server):
    # Post 1 is never answered: it times out at its deadline, while the others are answered
    # at once, side by side, not after it.
    def silent_for_one(request: bytes) -> bytes | None:
        return None if b"X-N: 1\r\n" in request else numbered_answer(request)

    server = raw_server(answer_for=silent_for_one)

    results = post_side_by_side(client(), posts(server, 6), ready=ready_now, tick=no_tick)

    failure, waited = results[1]
    assert isinstance(failure, HttpFailure)
    assert str(failure) == "Timeout: no answer within 1 s"
    assert waited >= 1
    fast = [results[n] for n in (0, 2, 3, 4, 5)]
    assert [answer.json() for answer, _ in fast] == [{"id": f"gw-{n}"} for n in (0, 2, 3, 4, 5)]
    # Each answered as it came, none kept until the silent one's deadline.
    assert max(seconds for _, seconds in fast) < 0.9


def test_no_more_posts_are_in_flight_than_the_pool_allows(raw_server):
    server = raw_server(answer(b"{}"), delay=0.1)

    results = post_side_by_side(
        client(pool_size=2, deadline=5), posts(server, 6), ready=ready_now, tick=no_tick
    )

    assert [a.status for a, _ in results] == [201] * 6
    # Two at a time, never more, never one by one; on two kept connections.
    assert server.most_unanswered == 2
    assert server.connections == 2


def test_an_answer_that_came_while_the_thread_was_busy_is_not_judged_late(raw_server):
    # Post 0 is answered at once; then the thread waits 1.3 s (for a slot of the provider's
    # rate, before post 1), past post 0's deadline of 1 s. Its answer came in time: it counts.
    server = raw_server(answer_for=numbered_answer)

    def ready(index: int) -> float:
        if index == 1:
            time.sleep(1.3)
        return time.monotonic()

    results = post_side_by_side(client(pool_size=2), posts(server, 2), ready=ready, tick=no_tick)

    assert [a.json() for a, _ in results] == [{"id": "gw-0"}, {"id": "gw-1"}]


def test_a_post_its_caller_holds_back_is_not_sent(raw_server):
    server = raw_server(answer(b"{}"))

    results = post_side_by_side(
        client(),
        posts(server, 3),
        ready=lambda index: None if index == 1 else time.monotonic(),
        tick=no_tick,
    )

    assert [type(result) for result, _ in results] == [HttpAnswer, type(None), HttpAnswer]
    assert [b"X-N: 1\r\n" in request for request in server.requests] == [False, False]


def test_the_deadline_counts_from_when_the_caller_says_the_send_began(raw_server):
    # A send that already waited 0.8 s for the provider's rate has 0.2 s left of its 1 s.
    server = raw_server(answer(b"{}"), delay=0.5)

    [(failure, seconds)] = post_side_by_side(
        client(), posts(server, 1), ready=lambda index: time.monotonic() - 0.8, tick=no_tick
    )

    assert str(failure) == "Timeout: no answer within 1 s"
    assert seconds >= 0.9  # counted from the caller's start, 0.8 s before the post


def test_the_caller_is_called_back_while_the_posts_wait(raw_server):
    # The dispatcher renews its leases there: a slow peer must not keep it from doing so.
    server = raw_server(answer(b"{}"), delay=0.6)
    ticks = []

    def tick() -> float:
        ticks.append(time.monotonic())
        return 0.1

    post_side_by_side(client(deadline=5), posts(server, 2), ready=ready_now, tick=tick)

    assert len(ticks) >= 4


def test_kept_connections_serve_both_ways_of_posting(raw_server):
    server = raw_server(answer(b"{}"))
    http = client(pool_size=1)

    post_side_by_side(http, posts(server, 3), ready=ready_now, tick=no_tick)
    single = http.post(f"http://127.0.0.1:{server.port}/sms", form={"n": 9})

    assert single.status == 201
    assert server.connections == 1


def test_posts_from_several_threads_share_the_kept_connections_safely(raw_server):
    server = raw_server(answer_for=numbered_answer)
    http = client(pool_size=2)
    results = {}

    def send(thread: int) -> None:
        results[thread] = post_side_by_side(http, posts(server, 20), ready=ready_now, tick=no_tick)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    for thread in range(3):
        assert [a.json() for a, _ in results[thread]] == [{"id": f"gw-{n}"} for n in range(20)]


@pytest.fixture
def trusted_certificate(tmp_path, monkeypatch):
    """A server certificate for "localhost", signed by a CA the client trusts (SSL_CERT_FILE)."""
    ca_file, server_file = write_test_ca_and_server_certificate(tmp_path, "localhost")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    return server_file


def test_posts_over_tls_go_side_by_side_on_kept_connections(trusted_certificate):
    with tls_server("127.0.0.1", trusted_certificate, keep_alive=True) as server:
        url = f"https://localhost:{server.port}/sms"
        sms = [Post(url, b"n=%d" % n, "application/x-www-form-urlencoded", {}) for n in range(8)]
        results = post_side_by_side(client(pool_size=2), sms, ready=ready_now, tick=no_tick)

    assert [a.status for a, _ in results] == [200] * 8
    # Two connections, each verified for the name asked (SNI), then kept.
    assert server.server_names == ["localhost", "localhost"]


def test_a_certificate_for_another_name_fails_the_post_as_a_tls_error(tmp_path, monkeypatch):
    ca_file, server_file = write_test_ca_and_server_certificate(tmp_path, "elsewhere.example")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    with tls_server("127.0.0.1", server_file) as server:
        url = f"https://localhost:{server.port}/sms"
        [(failure, _)] = post_side_by_side(
            client(), [Post(url, b"", "text/plain", {})], ready=ready_now, tick=no_tick
        )

    assert isinstance(failure, HttpFailure)
    assert str(failure).startswith("TLS error: ")


QUIRKY_ACCEPTANCES = {
    "bare line feeds": b'HTTP/1.1 201 Created\nContent-Length: 12\n\n{"id":"SM1"}',
    "framed two ways": b"HTTP/1.1 201 Created\r\nContent-Length: 17\r\n"
    b'Transfer-Encoding: chunked\r\n\r\nc\r\n{"id":"SM1"}\r\n0\r\n\r\n',
    "a folded header": b"HTTP/1.1 201 Created\r\nX-A: a\r\n b\r\n"
    b'Content-Length: 12\r\n\r\n{"id":"SM1"}',
    "a space before a colon": b'HTTP/1.1 201 Created\r\nContent-Length : 12\r\n\r\n{"id":"SM1"}',
    "a control in a value": b"HTTP/1.1 201 Created\r\nX-M: a\x01b\r\n"
    b'Content-Length: 12\r\n\r\n{"id":"SM1"}',
    "a byte too many": b'HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n{"id":"SM1"}}',
}


@pytest.mark.parametrize("quirk", QUIRKY_ACCEPTANCES)
def test_a_quirky_acceptance_is_read_as_http_client_read_it(raw_server, quirk):
    # llhttp is stricter than http.client, which read these gateways' answers before: an
    # acceptance must never turn into a failure, and the message be sent again.
    server = raw_server(QUIRKY_ACCEPTANCES[quirk], answers_a_connection=1)

    [(got, _)] = post_side_by_side(client(), posts(server, 1), ready=ready_now, tick=no_tick)

    assert (got.status, got.json()) == (201, {"id": "SM1"})


def test_an_acceptance_the_parser_gives_up_on_is_still_an_acceptance(raw_server):
    duplicate_length = (
        b'HTTP/1.1 201 Created\r\nContent-Length: 12\r\nContent-Length: 12\r\n\r\n{"id":"SM1"}'
    )
    server = raw_server(duplicate_length, answers_a_connection=1)

    [(got, _)] = post_side_by_side(client(), posts(server, 1), ready=ready_now, tick=no_tick)

    assert got.status == 201
    assert got.cut.startswith("answer broken off (unreadable: ")


def test_a_peer_switching_protocols_fails_its_own_post_alone(raw_server):
    def upgrade_for_one(request: bytes) -> bytes:
        if b"X-N: 1\r\n" in request:
            return (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
            )
        return numbered_answer(request)

    server = raw_server(answer_for=upgrade_for_one)

    results = post_side_by_side(client(), posts(server, 3), ready=ready_now, tick=no_tick)

    assert results[1][0].status == 101
    assert [results[n][0].json() for n in (0, 2)] == [{"id": "gw-0"}, {"id": "gw-2"}]


def test_a_caller_check_that_fails_fails_its_own_post_alone(raw_server):
    # The provider's rate is counted in the shared cache: Redis down fails that send alone.
    server = raw_server(answer_for=numbered_answer)

    def ready(index: int) -> float:
        if index == 1:
            raise ConnectionError("Error 111 connecting to redis")
        return time.monotonic()

    results = post_side_by_side(client(), posts(server, 3), ready=ready, tick=no_tick)

    assert str(results[1][0]) == "ConnectionError: Error 111 connecting to redis"
    assert [results[n][0].json() for n in (0, 2)] == [{"id": "gw-0"}, {"id": "gw-2"}]


def test_an_endless_head_is_cut_at_64_kib_and_the_status_stands(raw_server):
    endless = b"HTTP/1.1 201 Created\r\n" + b"X-Pad: " + b"a" * (1024 * 1024)
    server = raw_server(endless, answers_a_connection=1)
    started = time.monotonic()

    [(got, _)] = post_side_by_side(
        client(deadline=5), posts(server, 1), ready=ready_now, tick=no_tick
    )

    assert got.status == 201
    assert got.cut == "answer broken off (unreadable: a head over 65536 bytes)"
    assert time.monotonic() - started < 2


def test_an_answer_that_came_whole_while_the_thread_was_busy_is_read_whole(raw_server):
    # Over 64 KiB: more than one read. All of it is in the socket when the deadline of 1 s
    # is judged (the thread was away 1.3 s): it is read, not cut off as late.
    big = json.dumps({"id": "gw-0", "pad": "x" * 100_000}).encode()
    server = raw_server(answer(big))
    http = HttpClient(timeout=(1, 1), max_answer_bytes=256 * 1024, pool_size=2)

    def ready(index: int) -> float:
        if index == 1:
            time.sleep(1.3)
        return time.monotonic()

    results = post_side_by_side(http, posts(server, 2), ready=ready, tick=no_tick)

    assert [(a.json()["id"], a.cut) for a, _ in results] == [("gw-0", ""), ("gw-0", "")]


def test_a_failing_tick_starts_no_more_posts_but_finishes_those_in_flight(raw_server):
    # The dispatcher renews its leases there. If that fails (the database gone a moment),
    # an acceptance already on its way must still be known, to be recorded SENT.
    server = raw_server(answer_for=numbered_answer, delay=0.3)
    calls = []

    def tick() -> float:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("database gone")
        return 0.1

    results = post_side_by_side(
        client(pool_size=1, deadline=5), posts(server, 3), ready=ready_now, tick=tick
    )

    assert results[0][0].json() == {"id": "gw-0"}
    assert [result for result, _ in results[1:]] == [None, None]
    assert len(server.requests) == 1
