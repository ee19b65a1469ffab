"""/readyz: database, broker, cache and batch storage, each named with ok or error and its
time; 503 naming what fails, within READYZ_TIMEOUT_SECONDS even when a peer hangs."""

import socket
import time

import pytest

pytestmark = [
    pytest.mark.django_db,
    # A second alias pointed at a dead server, for these checks alone: Django's warning
    # is about connections the test would use, and it uses none.
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

CHECKS = {"database", "broker", "cache", "storage"}


@pytest.fixture(autouse=True)
def patient_deadline(settings):
    """A deadline no check reaches on a busy test machine, but where a test is about one
    that hangs: then the others may miss a short one too, and only the hung one is asserted."""
    settings.READYZ_TIMEOUT_SECONDS = 5
    settings.READYZ_CACHE_SECONDS = 0  # each probe checks afresh, except where a test says


@pytest.fixture
def silent_listener():
    """A loopback socket whose connections are established and never get a word: a hung
    server. Its port is `getsockname()[1]`."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener


@pytest.fixture
def silent_port(silent_listener):
    return silent_listener.getsockname()[1]


def connections_made(listener: socket.socket) -> int:
    """How many connections wait in the listener's queue (taken and closed)."""
    listener.setblocking(False)
    made = 0
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return made
        connection.close()
        made += 1


def postgres_at(port: int) -> dict:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "NAME": "kokatto",
        "USER": "postgres",
    }


def readyz(client):
    response = client.get("/readyz")
    return response.status_code, response.json()


def test_everything_reachable_is_ready_and_each_check_is_named_with_its_time(client, tmp_path):
    status, answer = readyz(client)

    assert status == 200, answer
    assert answer["status"] == "ok"
    assert set(answer["checks"]) == CHECKS
    for check in answer["checks"].values():
        assert check["status"] == "ok"
        assert check["seconds"] >= 0


def test_an_unreachable_postgresql_is_named(client, settings, closed_port):
    settings.DATABASES = {**settings.DATABASES, "reports": postgres_at(closed_port)}

    response = client.get("/readyz")
    answer = response.json()

    assert response.status_code == 503
    assert answer["failing"] == ["database:reports"]
    assert answer["checks"]["database:reports"]["error"] == "unreachable"
    assert answer["checks"]["database"]["status"] == "ok"
    # Neither the address nor the driver's words reach the prober (they are logged).
    assert b"127.0.0.1" not in response.content
    assert str(closed_port).encode() not in response.content


def test_a_hung_postgresql_is_a_timeout_within_the_deadline(client, settings, silent_port):
    settings.DATABASES = {**settings.DATABASES, "reports": postgres_at(silent_port)}
    settings.READYZ_TIMEOUT_SECONDS = 0.3

    status, answer = readyz(client)

    assert status == 503
    assert "database:reports" in answer["failing"]
    assert answer["checks"]["database:reports"]["error"] == "timeout"


def test_a_check_still_hung_is_not_started_again_by_the_next_probe(
    client, settings, silent_listener
):
    port = silent_listener.getsockname()[1]
    settings.DATABASES = {**settings.DATABASES, "reports": postgres_at(port)}
    settings.READYZ_TIMEOUT_SECONDS = 0.3

    answers = [readyz(client) for _ in range(2)]

    assert all("database:reports" in answer["failing"] for _, answer in answers)
    # One connection for two probes (within its 2 s connect_timeout): a server that
    # hangs for ever holds one thread.
    assert connections_made(silent_listener) == 1


def test_a_redis_broker_that_is_down_is_named(client, settings, closed_port):
    settings.Q_CLUSTER = {"name": "kokatto", "redis": f"redis://127.0.0.1:{closed_port}/0"}

    status, answer = readyz(client)

    assert status == 503
    assert answer["failing"] == ["broker"]
    assert answer["checks"]["broker"]["error"] == "unreachable"


def test_a_hung_redis_broker_is_a_timeout(client, settings, silent_port):
    settings.Q_CLUSTER = {"name": "kokatto", "redis": f"redis://127.0.0.1:{silent_port}/0"}
    settings.READYZ_TIMEOUT_SECONDS = 0.3

    status, answer = readyz(client)

    assert status == 503
    assert "broker" in answer["failing"]
    assert answer["checks"]["broker"]["error"] == "timeout"


def test_a_cache_that_is_down_is_named(client, settings, closed_port):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port}/0",
        }
    }

    status, answer = readyz(client)

    assert status == 503
    assert answer["failing"] == ["cache"]


def test_a_batch_storage_whose_root_is_missing_is_named(client, settings, tmp_path):
    # A local folder that is not there: what a missing bucket is to S3.
    settings.STORAGES = {
        **settings.STORAGES,
        "batches": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "not-mounted")},
        },
    }

    status, answer = readyz(client)

    assert status == 503
    assert answer["failing"] == ["storage"]
    assert answer["checks"]["storage"]["error"] == "unreachable"


def test_a_flood_of_probes_is_answered_from_the_last_check_for_a_second(client, settings, tmp_path):
    settings.READYZ_CACHE_SECONDS = 1
    root = tmp_path / "batches"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "batches": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    assert readyz(client)[0] == 200
    root.rmdir()  # the storage goes away: the next probes within the second are not checked

    assert readyz(client)[0] == 200
    time.sleep(1.1)
    status, answer = readyz(client)
    assert (status, answer["failing"]) == (503, ["storage"])
