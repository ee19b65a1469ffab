"""The same code sent from several sessions at once verifies one of them (PostgreSQL)."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.db import connection, connections
from django.test import Client

from tests.factories import UserFactory
from tests.security.conftest import code, enrol, verify

SESSIONS = 8

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite serialises writers; PG shows the race"
    ),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("two_factor_required"),
]


def test_one_code_sent_from_many_sessions_at_once_verifies_only_one():
    user = UserFactory(username="target", role="operator")
    device, _ = enrol(user)
    sessions = [Client() for _ in range(SESSIONS)]
    for session in sessions:
        session.force_login(user)
    stolen = code(device, steps_ahead=1)
    barrier = Barrier(SESSIONS)

    def send(session):
        barrier.wait()
        try:
            return verify(session, stolen).status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(SESSIONS) as pool:
        answers = list(pool.map(send, sessions))

    assert answers.count(302) == 1
    assert answers.count(200) == SESSIONS - 1
