import pytest
from django.core.cache import cache
from django.test import override_settings
from django_q.brokers import get_broker

from clients import config_cache
from notifications.dispatch_queue import dispatch_started
from tests.delivery import peers
from tests.delivery.workers import LOOPBACK_CALLBACKS
from tests.factories import (
    ApplicationFactory,
    ClientFactory,
    ContentTemplateFactory,
    UserFactory,
    demo_params,
)


@pytest.fixture
def client_8002(db):
    return ClientFactory(client_id="8002", name="PT Bank Demo Nusantara")


@pytest.fixture
def client_8003(db):
    return ClientFactory(client_id="8003", name="PT Pembiayaan Contoh")


@pytest.fixture
def app_8002(client_8002):
    return ApplicationFactory(client=client_8002, code="ABC")


@pytest.fixture
def app_8003(client_8003):
    return ApplicationFactory(client=client_8003, code="XYZ")


@pytest.fixture
def sms_template(app_8002):
    """app_8002's SMS template, every field used, with sample values for its previews."""
    app_8002.sample_values = demo_params(email="john@example.co.id")
    app_8002.save()
    return ContentTemplateFactory(
        application=app_8002,
        medium="sms",
        body="Bank Demo: Dear [customerName], Rp [balance|rupiah] due [dueDate|date:d MMMM yyyy].",
    )


@pytest.fixture
def staff_8002(client_8002):
    return UserFactory(username="staff8002", role="client_staff", clients=[client_8002])


@pytest.fixture
def operator_user(db):
    return UserFactory(username="operator", role="operator")


@pytest.fixture
def support_user(db):
    return UserFactory(username="support", role="support")


@pytest.fixture
def staff_client(client, staff_8002):
    """The Django test client, logged in as the client staff user of 8002."""
    client.force_login(staff_8002)
    return client


@pytest.fixture
def support_client(client, support_user):
    client.force_login(support_user)
    return client


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client


@pytest.fixture(scope="session", autouse=True)
def plain_http():
    """Tests talk plain http (the test client, the live server): no redirect to https.

    With DEBUG off the redirect is on by default; tests/security turns it on where it is
    what is tested. For the whole session, so the live server (started once) has it off.
    """
    with override_settings(SECURE_SSL_REDIRECT=False):
        yield


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2's deliberate slowness protects real logins, not test users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def empty_cache():
    # Rate-limit counters live in the cache; each test starts with none.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def no_config_cache(settings):
    # Tests change keys and schemas between calls; tests of the cache turn it on.
    settings.API_CONFIG_CACHE_SECONDS = 0
    config_cache.clear()


@pytest.fixture(autouse=True)
def no_dispatch_queued():
    """No test starts with a dispatch run flagged as queued by an earlier one (Redis keeps
    the flag across tests: notifications/dispatch_queue.py). Cleared before the test only:
    after it, the test's settings may point the cache at a server that is not there."""
    dispatch_started()


@pytest.fixture
def broker():
    """django-q2's broker (the ORM's by default, Redis with REDIS_URL), empty before and after.

    Tests that start qcluster processes share it with them.
    """
    broker = get_broker()
    broker.purge_queue()
    yield broker
    broker.purge_queue()


@pytest.fixture(autouse=True)
def two_factor_off(settings):
    """Two-factor sign-in is off unless a test asks for it with `two_factor_required`.

    Most tests sign in with force_login to look at a page; tests/security/test_two_factor.py
    proves that with it on no such page is reached without a code.
    """
    settings.ADMIN_TWO_FACTOR_REQUIRED = False


@pytest.fixture
def two_factor_required(settings):
    settings.ADMIN_TWO_FACTOR_REQUIRED = True


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on: a provider or client server that is down."""
    return peers.closed_port()


@pytest.fixture
def callbacks_to_loopback(settings):
    """Callbacks may go to loopback stand-ins of clients' servers over plain http, which
    the defaults refuse (clients/outbound.py)."""
    for name, value in LOOPBACK_CALLBACKS.items():
        setattr(settings, name, value)


@pytest.fixture
def scratch_var(settings, tmp_path):
    """VAR_DIR, the batch storage and its scratch space in tmp_path, not the project's var/:
    for seed_demo, which keeps the demo SFTP key there and ingests a demo batch file."""
    settings.VAR_DIR = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "batches": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "batches")},
        },
    }
    settings.BATCH_WORK_DIR = str(tmp_path / "batch-work")
    return tmp_path
