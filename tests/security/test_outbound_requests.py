"""Requests into the private network (SSRF): a client's callback URL never reaches it.

A client chooses its callback URL. Each test points one at the platform's own network
(a real HTTP server on loopback stands for Redis, an internal admin or the metadata
service) and shows that no connection is made, and that client staff never read more
than a short category of what happened. DNS answers for the client's public host name
are the one thing simulated: socket.getaddrinfo answers for that name alone.
"""

import contextlib
import json
import socket
import time
from typing import NamedTuple

import pytest

from clients.outbound import ADDRESS_NOT_PUBLIC, HTTP_NOT_ALLOWED
from clients.signing import sign
from notifications.backends.http_sms import HttpSmsBackend
from notifications.client_callbacks import client_callbacks_send_due
from notifications.dispatch import dispatch_due
from notifications.failures import detail_for_client, failure_category
from notifications.intake import notification_create
from notifications.models import ClientCallback, Delivery, Notification
from tests.admin_forms import form_data
from tests.delivery.slow_http import Answer, slow_http_server
from tests.factories import (
    ApplicationFactory,
    ContentTemplateFactory,
    DeliveryFactory,
    NotificationFactory,
    issue_key,
)
from tests.security.tls_server import tls_server, write_test_ca_and_server_certificate

# The client's public host name (.example never resolves for real: the test's DNS answers).
CLIENT_HOST = "callbacks.bank-demo.example"
SAVE_REFUSED = "callbacks are sent only over https to public addresses"


class FakeDns:
    """DNS answers for CLIENT_HOST, one list of addresses per lookup in turn (the last
    repeats); every other name is resolved for real. Counts the lookups of CLIENT_HOST."""

    def __init__(self, real_getaddrinfo):
        self.real = real_getaddrinfo
        self.answers: list[list[str]] = []
        self.lookups = 0
        self.delay = 0.0
        self.host = CLIENT_HOST

    def answer(self, *answers: list[str]) -> None:
        self.answers = list(answers)

    def __call__(self, host, port, *args, **kwargs):
        if host != self.host:
            return self.real(host, port, *args, **kwargs)
        self.lookups += 1
        time.sleep(self.delay)
        addresses = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
            if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in addresses
        ]


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def internal_server():
    """A service on the platform's own loopback that no callback may ever reach."""
    with slow_http_server() as server:
        yield server


@pytest.fixture
def http_allowed(settings):
    """Plain http allowed, so that the address rule alone is what refuses."""
    settings.CLIENT_CALLBACK_ALLOW_HTTP = True


def due_callback(client, url: str) -> ClientCallback:
    """A callback due now to `url`, stored as it is (say, before the rule existed)."""
    client.callback_url = url
    client.save()
    issue_key(client)
    return ClientCallback.objects.create(
        notification=NotificationFactory(application=ApplicationFactory(client=client)),
        url=url,
        payload={"requestId": "R-1", "status": "SENT", "deliveries": []},
    )


def sent(callback: ClientCallback) -> ClientCallback:
    """`callback` after a sweep of the due callbacks."""
    client_callbacks_send_due()
    callback.refresh_from_db()
    return callback


# The URL as written: refused when sent, whatever was stored.


def test_a_callback_to_a_loopback_server_is_never_sent(client_8002, internal_server):
    callback = sent(due_callback(client_8002, f"{internal_server.url}/status"))

    assert internal_server.connections == 0
    assert (callback.state, callback.attempts) == ("FAILED", 1)
    assert callback.last_response.startswith(HTTP_NOT_ALLOWED)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "https://127.0.0.1:{port}/",
        "http://[::1]:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://[::127.0.0.1]:{port}/",
        "http://[64:ff9b::7f00:1]:{port}/",
        "http://[2002:7f00:1::1]:{port}/",
        "http://0.0.0.0:{port}/",
        "http://localhost:{port}/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://10.0.0.5:6379/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://[fd12:3456:789a::1]/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
    ],
)
def test_a_callback_url_naming_an_address_that_is_not_public_is_never_called(
    client_8002, internal_server, http_allowed, url
):
    callback = sent(due_callback(client_8002, url.format(port=internal_server.port)))

    assert internal_server.connections == 0
    # Refused as written: no retry would change that.
    assert (callback.state, callback.attempts) == ("FAILED", 1)
    assert callback.last_response.startswith(ADDRESS_NOT_PUBLIC)


# The host name: resolved once, every address checked, the checked one connected to.


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "64:ff9b::7f00:1",
        "0.0.0.0",  # noqa: S104 (a target to refuse, not a bind)
        "169.254.169.254",
        "fd00:ec2::254",
        "10.0.0.5",
        "172.16.0.1",
        "100.64.0.1",
        "fd12:3456:789a::1",
        "fe80::1",
        "240.0.0.1",
    ],
)
def test_a_host_name_resolving_to_an_address_that_is_not_public_is_never_connected_to(
    client_8002, internal_server, http_allowed, dns, address
):
    dns.answer([address])

    callback = sent(due_callback(client_8002, f"http://{CLIENT_HOST}:{internal_server.port}/"))

    assert dns.lookups == 1
    assert internal_server.connections == 0
    # DNS may be put right: the callback is tried again later.
    assert (callback.state, callback.attempts) == ("PENDING", 1)
    assert callback.last_response.startswith(ADDRESS_NOT_PUBLIC)
    assert address in callback.last_response or address.startswith("::")


def test_an_ipv4_address_with_a_zone_is_a_host_name_checked_as_one(
    client_8002, internal_server, http_allowed, dns
):
    # Only IPv6 addresses have zones: "8.8.8.8%25.bank-demo.example" is a name, and what it
    # resolves to (the platform's own loopback here) is checked, not 8.8.8.8.
    dns.host = "8.8.8.8%25.bank-demo.example"
    dns.answer(["127.0.0.1"])

    callback = sent(due_callback(client_8002, f"http://{dns.host}:{internal_server.port}/"))

    assert dns.lookups == 1
    assert internal_server.connections == 0
    assert callback.last_response.startswith(ADDRESS_NOT_PUBLIC)


def test_every_address_of_the_answer_must_be_allowed_not_just_one(
    client_8002, internal_server, http_allowed, dns, settings
):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]  # the client's "public" server
    dns.answer(["127.0.0.2", "127.0.0.1"])
    with slow_http_server(host="127.0.0.2", port=internal_server.port) as public:
        callback = sent(due_callback(client_8002, f"http://{CLIENT_HOST}:{public.port}/"))

    assert (public.connections, internal_server.connections) == (0, 0)
    assert callback.last_response.startswith(ADDRESS_NOT_PUBLIC)


def test_a_host_re_pointed_at_an_internal_address_after_the_check_is_never_reached(
    client_8002, internal_server, http_allowed, dns, settings
):
    # 127.0.0.2 stands for the client's public server (allowed as if it were public); the
    # client then re-points its name at 127.0.0.1, where an internal service listens on
    # the same port. A client that checked one DNS answer and connected after another
    # would reach it.
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    dns.answer(["127.0.0.2"], ["127.0.0.1"])
    with slow_http_server(host="127.0.0.2", port=internal_server.port) as public:
        url = f"http://{CLIENT_HOST}:{public.port}/status"
        first = sent(due_callback(client_8002, url))
        second = sent(due_callback(client_8002, url))

    assert internal_server.connections == 0
    assert first.state == "DONE"
    [exchange] = public.exchanges
    assert exchange.headers["Host"] == f"{CLIENT_HOST}:{public.port}"
    # One lookup a connection: the second connection's answer was checked, and refused.
    assert dns.lookups == 2
    assert second.last_response.startswith(ADDRESS_NOT_PUBLIC)


@pytest.fixture
def https_server(tmp_path, monkeypatch, settings):
    """start(name): the client's https server on 127.0.0.2 (allowed as if it were public),
    its certificate for `name` signed by a test CA the platform trusts."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    with contextlib.ExitStack() as stack:

        def start(name: str):
            ca_file, server_file = write_test_ca_and_server_certificate(tmp_path, name)
            monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
            return stack.enter_context(tls_server("127.0.0.2", server_file))

        yield start


def test_an_https_callback_connects_to_the_checked_address_and_verifies_the_host_name(
    client_8002, dns, https_server
):
    server = https_server(CLIENT_HOST)
    dns.answer(["127.0.0.2"])

    callback = sent(due_callback(client_8002, f"https://{CLIENT_HOST}:{server.port}/status"))

    assert callback.state == "DONE"
    assert server.server_names == [CLIENT_HOST]  # SNI: the name, not the address
    assert server.hosts == [f"{CLIENT_HOST}:{server.port}"]


def test_an_https_callback_to_a_server_without_a_certificate_for_the_name_fails(
    client_8002, dns, https_server
):
    server = https_server("someone-else.example")
    dns.answer(["127.0.0.2"])

    callback = sent(due_callback(client_8002, f"https://{CLIENT_HOST}:{server.port}/status"))

    assert server.hosts == []
    assert failure_category(callback.last_response) == "TLS error"
    assert "certificate is not valid for 'callbacks.bank-demo.example'" in callback.last_response


def test_a_redirect_to_an_internal_address_is_not_followed(
    client_8002, internal_server, http_allowed, dns, settings
):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    dns.answer(["127.0.0.2"])
    redirect = Answer(status=302, headers={"Location": f"{internal_server.url}/admin"})
    with slow_http_server(redirect, host="127.0.0.2") as public:
        callback = sent(due_callback(client_8002, f"http://{CLIENT_HOST}:{public.port}/"))

    assert len(public.exchanges) == 1
    assert internal_server.connections == 0
    assert (callback.state, callback.last_response) == ("PENDING", "HTTP 302")


def test_a_slow_dns_answer_counts_against_the_callbacks_deadline(
    client_8002, http_allowed, dns, settings
):
    settings.CLIENT_CALLBACK_CONNECT_TIMEOUT_SECONDS = 1
    settings.CLIENT_CALLBACK_TIMEOUT_SECONDS = 1
    dns.delay = 5
    dns.answer(["93.184.215.14"])
    callback = due_callback(client_8002, f"http://{CLIENT_HOST}/")

    started = time.monotonic()
    callback = sent(callback)

    assert time.monotonic() - started < 3
    assert failure_category(callback.last_response) == "timeout"


# The settings: extra allowed and denied networks, plain http.


def test_an_allowed_network_is_reached(client_8002, internal_server, http_allowed, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]

    callback = sent(due_callback(client_8002, f"{internal_server.url}/status"))

    assert callback.state == "DONE"
    assert len(internal_server.exchanges) == 1


def test_a_denied_network_wins_over_an_allowed_one(
    client_8002, internal_server, http_allowed, settings
):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.OUTBOUND_DENIED_NETWORKS = ["127.0.0.1/32"]

    callback = sent(due_callback(client_8002, f"{internal_server.url}/status"))

    assert internal_server.connections == 0
    assert callback.last_response.startswith(ADDRESS_NOT_PUBLIC)


def test_a_denied_network_refuses_a_public_address(client_8002, dns, settings):
    settings.OUTBOUND_DENIED_NETWORKS = ["93.184.215.0/24"]
    dns.answer(["93.184.215.14"])

    callback = sent(due_callback(client_8002, f"https://{CLIENT_HOST}/status"))

    assert dns.lookups == 1
    assert callback.last_response == (
        f"{ADDRESS_NOT_PUBLIC}: {CLIENT_HOST} resolves to 93.184.215.14 is in "
        "OUTBOUND_DENIED_NETWORKS"
    )


@pytest.mark.parametrize("address", ["169.254.169.254", "::ffff:169.254.169.254"])
def test_metadata_addresses_are_refused_even_within_an_allowed_network(
    client_8002, http_allowed, dns, settings, address
):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["169.254.0.0/16", "::ffff:0:0/96"]
    dns.answer([address])

    callback = sent(due_callback(client_8002, f"http://{CLIENT_HOST}/latest/meta-data/"))

    assert callback.last_response.startswith(ADDRESS_NOT_PUBLIC)
    assert "cloud metadata address" in callback.last_response


def test_plain_http_is_refused_unless_the_setting_allows_it(client_8002, internal_server, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    refused = sent(due_callback(client_8002, f"{internal_server.url}/status"))
    settings.CLIENT_CALLBACK_ALLOW_HTTP = True
    allowed = sent(due_callback(client_8002, f"{internal_server.url}/status"))

    assert (refused.state, failure_category(refused.last_response)) == ("FAILED", HTTP_NOT_ALLOWED)
    assert allowed.state == "DONE"
    assert len(internal_server.exchanges) == 1


def test_provider_backends_still_reach_loopback_stand_ins(db):
    # Provider URLs are the operators' configuration: trusted, not address-checked.
    with slow_http_server() as gateway:
        backend = HttpSmsBackend(url=f"{gateway.url}/sms", encoding="json", timeout=(1, 1))
        result = backend.send(DeliveryFactory(body="Bank Demo"))

    assert result.outcome == "sent"
    assert len(gateway.exchanges) == 1


# Saving the URL in the admin.


def save_callback_url(client, operator_user, target, url: str):
    client.force_login(operator_user)
    change_url = f"/admin/clients/client/{target.pk}/change/"
    data = form_data(client.get(change_url))
    data["callback_url"] = url
    return client.post(change_url, data)


@pytest.mark.parametrize(
    "url",
    [
        f"http://{CLIENT_HOST}/status",
        "https://127.0.0.1/status",
        "https://[::1]/status",
        "https://[::ffff:10.0.0.1]/status",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/status",
        "https://[fd12::1]/status",
        "https://localhost/status",
    ],
)
def test_a_callback_url_that_is_not_https_to_a_public_host_is_refused_on_save(
    client, operator_user, client_8002, url
):
    response = save_callback_url(client, operator_user, client_8002, url)

    assert response.status_code == 200
    assert SAVE_REFUSED in response.content.decode()
    client_8002.refresh_from_db()
    assert client_8002.callback_url == ""


def test_an_https_callback_url_with_a_host_name_is_saved(client, operator_user, client_8002):
    response = save_callback_url(client, operator_user, client_8002, f"https://{CLIENT_HOST}/s")

    assert response.status_code == 302
    client_8002.refresh_from_db()
    assert client_8002.callback_url == f"https://{CLIENT_HOST}/s"


def test_a_plain_http_callback_url_is_saved_when_the_setting_allows_it(
    client, operator_user, client_8002, http_allowed
):
    response = save_callback_url(client, operator_user, client_8002, f"http://{CLIENT_HOST}/s")

    assert response.status_code == 302


# What client staff read of a failure: its category only.


class Failures(NamedTuple):
    notification: Notification
    delivery: Delivery
    port: str  # "port=…" of the provider's address, as library messages write it
    secret: str  # the client's API secret


@pytest.fixture
def failed_everywhere(client_8002, app_8002, dns, http_allowed, settings, closed_port):
    """A notification whose SMS failed at a provider on an internal address and port, and
    whose callback was refused because the client's name resolves to an internal address."""
    settings.KOKATTO_CHANNEL_BACKENDS = {
        "sms": [
            {
                "BACKEND": "notifications.backends.http_sms.HttpSmsBackend",
                "OPTIONS": {"url": f"http://127.0.0.1:{closed_port}/sms", "timeout": (1, 1)},
            }
        ]
    }
    settings.DELIVERY_MAX_ATTEMPTS = 1
    dns.answer(["10.20.30.40"])
    client_8002.callback_url = f"http://{CLIENT_HOST}/status"
    client_8002.save()
    _, secret = issue_key(client_8002)
    ContentTemplateFactory(application=app_8002, medium="sms", body="Bank Demo")
    notification = notification_create(
        client=client_8002,
        application_code="ABC",
        reference="R-1",
        values={
            "customerName": "Budi",
            "balance": "1230000",
            "dueDate": "09-09-2015",
            "msisdn": "081234567890",
        },
    ).notification
    dispatch_due()
    client_callbacks_send_due()
    return Failures(notification, Delivery.objects.get(), f"port {closed_port}", secret)


DETAIL_MARKERS = ["127.0.0.1", "10.20.30.40", "Errno", "Failed to establish", "Connection refused:"]


def pages(client, notification, delivery) -> str:
    return "".join(
        client.get(url).content.decode()
        for url in (
            f"/admin/notifications/notification/{notification.pk}/change/",
            f"/admin/notifications/delivery/{delivery.pk}/change/",
        )
    )


def test_client_staff_see_only_the_category_of_a_failure(staff_client, failed_everywhere):
    notification, delivery, port, _ = failed_everywhere

    shown = pages(staff_client, notification, delivery)

    assert "connection refused" in shown  # the delivery's last error and its history
    assert ADDRESS_NOT_PUBLIC in shown  # the callback's last response
    for detail in [port, *DETAIL_MARKERS]:
        assert detail not in shown


@pytest.mark.parametrize("viewer", ["operator_user", "support_user"])
def test_platform_staff_see_the_detail_of_a_failure(client, failed_everywhere, request, viewer):
    notification, delivery, port, _ = failed_everywhere
    client.force_login(request.getfixturevalue(viewer))

    shown = pages(client, notification, delivery)

    for detail in [port, *DETAIL_MARKERS]:
        assert detail in shown


def test_the_status_answer_and_the_callback_carry_no_failure_detail(client, failed_everywhere):
    parameters = {
        "clientId": "8002",
        "timestamp": str(int(time.time())),
        "operation": "status",
        "clientNotifRefId": "R-1",
    }
    parameters["signature"] = sign(parameters, failed_everywhere.secret)

    answer = client.get("/notif", parameters)
    payload = ClientCallback.objects.get().payload

    assert answer.status_code == 200
    assert answer.json()["deliveries"][0]["status"] == "FAILED"
    for told in (answer.content.decode(), json.dumps(payload)):
        for detail in [failed_everywhere.port, *DETAIL_MARKERS, "refused"]:
            assert detail not in told


@pytest.mark.parametrize(
    ("stored", "category"),
    [
        # Written before the categories: still shown as one.
        ("ConnectionError: HTTPConnectionPool(host='10.0.0.5', port=6379)", "connection failed"),
        ("ConnectionError: <c>: [Errno 111] Connection refused", "connection refused"),
        ("ConnectTimeout: HTTPSConnectionPool(host='sms.internal', port=443)", "timeout"),
        ("HTTP 503: upstream sms-gw-2.internal:8443 unavailable", "HTTP 503"),
        ("HTTP 200 (answer over 4096 bytes, not read)", "HTTP 200, answer too large"),
        ("InvalidToken: the client's secret key cannot be read", "secret key unreadable"),
        ("KeyError: 'db-primary.internal'", "failed"),
    ],
)
def test_a_stored_failure_shows_client_staff_its_category_only(stored, category):
    assert failure_category(stored) == category


@pytest.mark.parametrize(
    ("detail", "shown"),
    [
        (
            "attempt 2 by sms gw failed (Connection refused: _WatchedConnection(host='10.0.0.1', "
            "port=8443): [Errno 111]); retry at 10:00:00; rendered with template version 3",
            "attempt 2 by sms gw failed (connection refused); retry at 10:00:00; "
            "rendered with template version 3",
        ),
        (
            "attempt 1 by twilio failed (Timeout: no answer within 1 s); "
            "a retry would come after expiresAt",
            "attempt 1 by twilio failed (timeout); a retry would come after expiresAt",
        ),
        (
            "failed after 3 attempt(s), last by twilio: HTTP 400: {'host': 'sms.internal'}",
            "failed after 3 attempt(s), last by twilio: HTTP 400",
        ),
        ("failed: RENDER_ERROR: KeyError: 'x'", "failed: template could not be rendered"),
        ("sent by twilio as SM123", "sent by twilio as SM123"),
    ],
)
def test_a_status_history_detail_shows_client_staff_the_category_of_its_error(detail, shown):
    assert detail_for_client(detail) == shown
