"""Fixtures for delivery tests: real local peers the channel backends talk to.

    smtp_server  a running SmtpServer; Django's SMTP email backend points at it
    sms_sink     a running SmsSink (Twilio's Messages API and a generic JSON gateway)
    start_cluster  start_cluster(sink, **env) -> a running qcluster (tests/delivery/workers.py);
                 every one is killed at the end
    short_deadline  provider calls cut at 1 s, their answers read up to 4 KiB
    raw_server   raw_server(answer bytes, **options) -> a running RawServer
                 (tests/delivery/raw_http.py); all stopped at the end
    closed_port  (tests/conftest.py) a loopback port nothing listens on ("the server is down")
    callbacks_to_loopback  (tests/conftest.py) callbacks may go to the loopback stand-ins of
                 clients' servers over plain http (the defaults refuse both)

See tests/delivery/peers.py for their attributes.
"""

import pytest

from notifications.backends.smtp_pool import close_process_pools
from tests.delivery import peers
from tests.delivery.raw_http import RawServer
from tests.delivery.workers import cluster_starter


@pytest.fixture
def smtp_server(settings):
    server = peers.SmtpServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = server.host
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield server
    close_process_pools()  # the worker's pooled SMTP connections, as at its exit
    server.stop()


@pytest.fixture
def sms_sink():
    sink = peers.SmsSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def start_cluster(tmp_path):
    with cluster_starter(tmp_path) as start:
        yield start


@pytest.fixture
def short_deadline(settings):
    settings.PROVIDER_HTTP_CONNECT_TIMEOUT_SECONDS = 1
    settings.DELIVERY_SEND_TIMEOUT_SECONDS = 1
    settings.PROVIDER_HTTP_MAX_ANSWER_BYTES = 4096


@pytest.fixture
def raw_server():
    servers = []

    def start(answer: bytes = b"", **options) -> RawServer:
        servers.append(RawServer(answer, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
