"""The gateway's brute-force defence (batches/gateway/defender.py), as the servers use it."""

import threading
from datetime import timedelta

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from batches.gateway import defender
from batches.gateway.ban_models import (
    GatewayLoginFailure,
    GatewayScore,
    LoginFailureReason,
    ScoreKind,
)
from batches.gateway.defender import (
    gateway_defender_prune,
    gateway_login_failed,
    gateway_login_refusal,
    gateway_login_succeeded,
)

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.7"
BYSTANDER = "198.51.100.20"


@pytest.fixture(autouse=True)
def defence(settings):
    settings.GATEWAY_BAN_THRESHOLD = 10
    settings.GATEWAY_BAN_WINDOW_SECONDS = 300
    settings.GATEWAY_BAN_SECONDS = 900
    settings.GATEWAY_BAN_MAX_SECONDS = 86400
    return settings


def fail(times, *, address=ATTACKER, username="acme", reason=LoginFailureReason.WRONG_PASSWORD):
    started = []
    for _ in range(times):
        started += gateway_login_failed(
            address=address, username=username, protocol="sftp", reason=reason
        )
    return started


def move_back(seconds):
    """As if every stored time were `seconds` earlier: time passing, without sleeping."""
    delta = timedelta(seconds=seconds)
    for row in GatewayScore.objects.all():
        row.window_started_at -= delta
        row.last_failure_at -= delta
        if row.banned_until:
            row.banned_until -= delta
        row.save()
    for failure in GatewayLoginFailure.objects.all():
        failure.created_at -= delta
        failure.save()


def test_the_refusal_check_is_one_query_on_the_source_index():
    now = timezone.now()
    GatewayScore.objects.bulk_create(
        GatewayScore(
            kind=ScoreKind.ADDRESS,
            value=f"10.{n // 65536}.{n // 256 % 256}.{n % 256}",
            window_started_at=now,
            last_failure_at=now,
            banned_until=now + timedelta(hours=1),
        )
        for n in range(20_000)
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE batches_gatewayscore")

    with CaptureQueriesContext(connection) as queries:
        assert gateway_login_refusal(address="10.0.1.2", username="acme") is not None
    [refusal] = queries.captured_queries

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {refusal['sql']}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "one_gateway_score_per_source" in plan
        assert "Seq Scan" not in plan


def test_failures_under_the_threshold_do_not_ban():
    assert fail(9) == []
    assert gateway_login_refusal(address=ATTACKER, username="acme") is None
    assert GatewayLoginFailure.objects.count() == 9


def test_reaching_the_threshold_bans_the_address_and_the_username_for_the_ban_time():
    started = fail(10)

    assert {(ban.kind, ban.value) for ban in started} == {
        (ScoreKind.ADDRESS, ATTACKER),
        (ScoreKind.USERNAME, "acme"),
    }
    assert "203.0.113.7 banned" in gateway_login_refusal(address=ATTACKER, username="other")
    assert "acme banned" in gateway_login_refusal(address=BYSTANDER, username="acme")
    ban = GatewayScore.objects.get(kind=ScoreKind.ADDRESS)
    assert ban.banned_until - ban.last_failure_at == timedelta(seconds=900)


def test_another_address_and_another_username_are_unaffected_by_a_ban():
    fail(10)
    assert gateway_login_refusal(address=BYSTANDER, username="globex") is None


def test_failures_spread_over_more_than_the_window_do_not_ban():
    fail(9)
    move_back(301)
    fail(9)
    assert gateway_login_refusal(address=ATTACKER, username="acme") is None


def test_unknown_user_names_count_double_against_the_address_and_are_not_stored_as_sources():
    fail(5, username="nobody", reason=LoginFailureReason.UNKNOWN_USER)

    assert gateway_login_refusal(address=ATTACKER, username="acme") is not None
    assert not GatewayScore.objects.filter(kind=ScoreKind.USERNAME).exists()


def test_the_ban_lifts_after_its_time():
    fail(10)
    move_back(899)
    assert gateway_login_refusal(address=ATTACKER, username="acme") is not None
    move_back(2)
    assert gateway_login_refusal(address=ATTACKER, username="acme") is None


def test_attempts_while_banned_do_not_extend_the_ban():
    fail(10)
    until = GatewayScore.objects.get(kind=ScoreKind.ADDRESS).banned_until
    for _ in range(20):
        gateway_login_refusal(address=ATTACKER, username="acme")
    fail(10)  # raced past the refusal before the ban began
    assert GatewayScore.objects.get(kind=ScoreKind.ADDRESS).banned_until == until


def test_a_repeat_ban_lasts_twice_as_long_up_to_the_maximum(defence):
    durations = []
    for _ in range(3):
        fail(10)
        ban = GatewayScore.objects.get(kind=ScoreKind.ADDRESS)
        durations.append(ban.banned_until - ban.last_failure_at)
        move_back((ban.banned_until - ban.last_failure_at).total_seconds() + 1)
    assert durations == [timedelta(seconds=s) for s in (900, 1800, 3600)]

    defence.GATEWAY_BAN_MAX_SECONDS = 3000
    fail(10)
    ban = GatewayScore.objects.get(kind=ScoreKind.ADDRESS)
    assert (ban.ban_count, ban.banned_until - ban.last_failure_at) == (4, timedelta(seconds=3000))


def test_a_success_does_not_reset_the_address_score():
    fail(9)
    gateway_login_succeeded(address=ATTACKER, username="own-account", protocol="sftp")
    fail(1, username="victim")
    assert gateway_login_refusal(address=ATTACKER, username="someone") is not None


def test_ipv6_addresses_are_scored_by_their_slash_64():
    for host in range(10):
        fail(1, address=f"2001:db8:aa:bb::{host + 1:x}", username=f"user{host}")

    assert gateway_login_refusal(address="2001:db8:aa:bb:ffff::1", username="x") == (
        gateway_login_refusal(address="2001:db8:aa:bb::1", username="x")
    )
    assert "2001:db8:aa:bb::/64 banned" in gateway_login_refusal(
        address="2001:db8:aa:bb:ffff::1", username="x"
    )
    assert gateway_login_refusal(address="2001:db8:aa:bc::1", username="x") is None


def test_an_ipv4_mapped_ipv6_address_is_its_ipv4_address():
    fail(10, address="::ffff:203.0.113.7")
    assert gateway_login_refusal(address=ATTACKER, username="x") is not None


def test_pruning_drops_scores_whose_window_passed_and_keeps_bans_and_fresh_scores():
    fail(10)  # banned
    fail(3, address=BYSTANDER, username="globex")  # a few failures, never banned
    move_back(600)
    fail(2, address="192.0.2.1", username="initech")

    removed = gateway_defender_prune(older_than=timezone.now() - timedelta(days=1))

    assert removed == 2  # the bystander's and globex's scores, which would restart anyway
    assert sorted(GatewayScore.objects.values_list("value", flat=True)) == [
        "192.0.2.1",
        ATTACKER,
        "acme",
        "initech",
    ]
    assert GatewayLoginFailure.objects.count() == 15


def test_pruning_drops_failures_and_past_bans_older_than_the_keep_time():
    fail(10)
    move_back(7200)
    fail(10, address=BYSTANDER, username="globex")
    move_back(1000)  # the bystander's ban is over, but remembered for a repeat

    removed = gateway_defender_prune(older_than=timezone.now() - timedelta(seconds=3600))

    assert removed == 10 + 2
    assert sorted(GatewayScore.objects.values_list("value", flat=True)) == [BYSTANDER, "globex"]
    assert GatewayLoginFailure.objects.count() == 10


def test_pruning_keeps_a_running_ban_even_past_the_keep_time():
    fail(10)
    move_back(600)
    gateway_defender_prune(older_than=timezone.now() - timedelta(seconds=60))
    assert gateway_login_refusal(address=ATTACKER, username="acme") is not None


def test_pruning_keeps_at_most_the_newest_failures(defence):
    defence.GATEWAY_FAILURE_LOG_MAX_ROWS = 5
    for host in range(12):
        fail(1, address=f"192.0.2.{host + 1}", username=f"user{host}")
    gateway_defender_prune(older_than=timezone.now() - timedelta(days=1))

    assert list(GatewayLoginFailure.objects.values_list("address", flat=True)) == [
        f"192.0.2.{host}" for host in range(12, 7, -1)
    ]


def test_the_failure_path_prunes_every_so_often(monkeypatch):
    monkeypatch.setattr(defender, "PRUNE_EVERY", 5)
    fail(3, username="globex")
    move_back(8 * 24 * 3600)
    fail(7, address=BYSTANDER, username="acme")

    assert GatewayLoginFailure.objects.count() < 10
    assert not GatewayScore.objects.filter(value__in=[ATTACKER, "globex"]).exists()


def test_lifting_a_ban_in_the_admin_unbans_and_is_logged(operator_client, operator_user):
    fail(10)
    bans = operator_client.get(reverse("admin:batches_gatewayscore_changelist"))
    assert ATTACKER in bans.content.decode()
    address_ban = GatewayScore.objects.get(kind=ScoreKind.ADDRESS)

    response = operator_client.post(
        reverse("admin:batches_gatewayscore_changelist"),
        {"action": "lift_bans", "_selected_action": [address_ban.pk]},
        follow=True,
    )

    assert "Lifted 1 ban(s)." in response.content.decode()
    assert gateway_login_refusal(address=ATTACKER, username="other") is None
    assert gateway_login_refusal(address=BYSTANDER, username="acme") is not None
    entry = LogEntry.objects.get(object_id=str(address_ban.pk))
    assert (entry.user, entry.action_flag, entry.change_message) == (
        operator_user,
        DELETION,
        "Lifted the gateway ban.",
    )


def test_operators_see_recent_failed_logins(operator_client):
    fail(1, username="acme", reason=LoginFailureReason.WRONG_KEY)
    page = operator_client.get(reverse("admin:batches_gatewayloginfailure_changelist"))
    assert page.status_code == 200
    assert "Wrong key" in page.content.decode()


@pytest.mark.parametrize("who", ["staff_client", "support_client"])
def test_client_staff_and_support_can_neither_see_nor_lift_bans(request, who):
    browser = request.getfixturevalue(who)
    fail(10)
    ban = GatewayScore.objects.get(kind=ScoreKind.ADDRESS)

    for name in ("batches_gatewayscore_changelist", "batches_gatewayloginfailure_changelist"):
        assert browser.get(reverse(f"admin:{name}")).status_code == 403
    browser.post(
        reverse("admin:batches_gatewayscore_changelist"),
        {"action": "lift_bans", "_selected_action": [ban.pk]},
    )
    index = browser.get(reverse("admin:index")).content.decode()
    assert reverse("admin:batches_gatewayscore_changelist") not in index
    assert reverse("admin:batches_gatewayloginfailure_changelist") not in index
    assert gateway_login_refusal(address=ATTACKER, username="x") is not None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks across connections")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_gateways_failing_at_once_on_postgresql_reach_the_ban_exactly_once():
    start = threading.Barrier(30)
    started = []

    def gateway(index):
        start.wait()
        try:
            started.extend(fail(1, username=f"user{index}"))
        finally:
            connection.close()

    threads = [threading.Thread(target=gateway, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ban = GatewayScore.objects.get(kind=ScoreKind.ADDRESS)
    assert [(b.kind, b.value) for b in started] == [(ScoreKind.ADDRESS, ATTACKER)]
    assert ban.ban_count == 1
    assert GatewayLoginFailure.objects.count() == 30
