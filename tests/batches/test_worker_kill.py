"""A batch ingest killed mid-file by SIGKILL, and two runs of the same batch at once.

1. A real `manage.py qcluster` (tests/delivery/workers.py) ingests a 6,000-line
   encrypted batch in chunks of 500 lines; once its checkpoint passes line 1,500
   the whole cluster is SIGKILLed. The batch is left PROCESSING with a partial
   checkpoint and a lease that still turns other runs away. Once the lease (3 s
   here) runs out, `batches_requeue_stalled` queues the ingest again, as the
   inbox poll would, and a second cluster resumes after the checkpoint: every
   line ends up accepted once or rejected once, and the result file has one row
   a line.
2. The same, killing only the worker that runs the ingest: its line checker ends
   with it, the cluster lives on with a new worker, and the inbox poll, run by the
   cluster, queues the batch again once the lease runs out.
3. Two runs of the same batch started at once in two threads of this process:
   one takes the lease and ingests, the other answers "busy" while the first is
   still at work, and nothing is stored twice.

The clusters share the test database (committed data: transaction=True), the
broker, the batch storage (BATCH_STORAGE_OPTIONS) and BATCH_WORK_DIR with this
process. An in-memory SQLite test database can't be opened by another process,
so the cluster test runs on PostgreSQL only, as tests/delivery/test_worker_crash.py
does; on SQLite it skips. The threaded test runs on both.

Every line carries a sendAt years ahead: the dispatch tasks each stored chunk
queues find nothing due, and the cluster's only worker stays on the batch.
"""

import contextlib
import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_q.tasks import async_task

from batches.inbox import batches_requeue_stalled, queue_ingest
from batches.ingest import batch_ingest
from batches.models import Batch, BatchStatus, RejectedLine
from notifications.models import Delivery, Notification
from tests.batches.conftest import line, receive
from tests.batches.test_ingest import result_rows
from tests.delivery.workers import Cluster, cluster_starter, wait_until

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

on_postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="qcluster processes need a test database other processes can open "
    "(the SQLite test database is in memory); CI runs these on PostgreSQL",
)

LINES = 6000
CHUNK = 500  # BATCH_CHUNK_LINES of the clusters
KILL_AFTER = 1500  # SIGKILL once the checkpoint reaches this line
LEASE_SECONDS = 3  # BATCH_LEASE_SECONDS of the clusters
SEND_AT = "2051222400"  # 2035-01-01: nothing these lines create is due for years
# Line number -> (token overrides, the rejection's code). Line 5003 reuses line 10's
# reference; the checkpoint at the kill is well before it, so the second run rejects it.
BAD_LINES = {
    7: ({"balance": "12x"}, "VALIDATION_ERROR"),
    1234: ({"clientId": "8003"}, "CLIENT_MISMATCH"),
    3001: (None, "MALFORMED_TOKEN"),
    4500: ({"appType": "NOPE"}, "UNKNOWN_APP_TYPE"),
    5003: ({"clientNotifRefId": "REF-00010"}, "DUPLICATE_REFERENCE"),
    6000: ({"msisdn": "not-a-phone"}, "VALIDATION_ERROR"),
}


def reference_of(number: int) -> str:
    return f"REF-{number:05d}"


def batch_text(count: int, bad: dict) -> str:
    """`count` lines, each line n with reference REF-n; the `bad` ones as described."""
    lines = []
    for number in range(1, count + 1):
        overrides, _ = bad.get(number, ({}, ""))
        if overrides is None:
            lines.append("clientId=8002, appType=ABC, oops")
        else:
            lines.append(line(reference_of(number), sendAt=SEND_AT, **overrides))
    return "\n".join(lines) + "\n"


def expected_outcomes(count: int, bad: dict) -> dict[int, str]:
    """Line number -> "ACCEPTED" or the code it is rejected with."""
    return {n: bad[n][1] if n in bad else "ACCEPTED" for n in range(1, count + 1)}


def assert_each_line_once(batch: Batch, outcomes: dict[int, str]) -> None:
    """The batch DONE; each line accepted once or rejected once; the result file agrees."""
    batch.refresh_from_db()
    count = len(outcomes)
    accepted = {n for n, outcome in outcomes.items() if outcome == "ACCEPTED"}
    rejected = {n: outcome for n, outcome in outcomes.items() if outcome != "ACCEPTED"}
    assert batch.status == BatchStatus.DONE, (batch.status, batch.failure_code)
    assert (batch.lines_read, batch.lines_accepted, batch.lines_rejected) == (
        count,
        len(accepted),
        len(rejected),
    )
    assert batch.lines_accepted + batch.lines_rejected == batch.lines_read
    assert batch.checkpoint_line == count

    notifications = Notification.objects.filter(batch=batch)
    lines = Counter(notifications.values_list("batch_line", flat=True))
    references = Counter(notifications.values_list("reference", flat=True))
    assert notifications.count() == len(accepted)
    assert lines == Counter(dict.fromkeys(accepted, 1))
    assert references == Counter({reference_of(n): 1 for n in accepted})
    # One SMS delivery a notification (the lines give an msisdn, no email).
    assert Delivery.objects.filter(notification__batch=batch).count() == len(accepted)

    rejections = RejectedLine.objects.filter(batch=batch)
    assert rejections.count() == len(rejected)
    assert dict(rejections.values_list("line", "code")) == rejected
    assert not set(lines) & set(rejections.values_list("line", flat=True))

    rows = result_rows(batch)
    assert rows[0] == ["line", "clientNotifRefId", "status", "code", "message"]
    assert [int(row[0]) for row in rows[1:]] == list(range(1, count + 1))
    assert {int(row[0]): row[3] or row[2] for row in rows[1:]} == outcomes


# --- a cluster killed mid-batch -----------------------------------------------------------


@pytest.fixture
def start_cluster(tmp_path, batch_home):
    """start_cluster(**env) -> a running Cluster ingesting batches from `batch_home`.

    The clusters send SMS to the console (nothing is due anyway); every one is
    SIGKILLed at the end.
    """
    no_sink = SimpleNamespace(url="http://127.0.0.1:9", account_sid="", auth_token="")
    batch_env = {
        "SMS_BACKENDS": "console",
        "Q_WORKERS": 1,
        "BATCH_CHUNK_LINES": CHUNK,
        "BATCH_LEASE_SECONDS": LEASE_SECONDS,
        "OPENPGP_GPG_SECONDS": LEASE_SECONDS - 1,  # below the lease, as the check requires
        "BATCH_STORAGE_OPTIONS": json.dumps({"location": str(batch_home)}),
        "BATCH_WORK_DIR": settings.BATCH_WORK_DIR,
    }
    with cluster_starter(tmp_path) as start:
        yield lambda **env: start(no_sink, **{**batch_env, **env})


def logs(*clusters: Cluster) -> str:
    return "\n".join(f"--- {c.log_path.name}:\n{c.log_tail()}" for c in clusters)


def batch_state(pk: int) -> dict:
    return Batch.objects.filter(pk=pk).values(
        "status", "checkpoint_line", "lines_read", "lines_accepted", "lines_rejected", "runs"
    )[0]


def wait_for_kill_point(batch: Batch, cluster: Cluster) -> None:
    """Until the cluster's run has stored KILL_AFTER lines; fails if the cluster ended first."""
    reached = wait_until(
        lambda: batch_state(batch.pk)["checkpoint_line"] >= KILL_AFTER or not cluster.alive,
        timeout=30,
        interval=0.01,
    )
    assert reached and cluster.alive, f"{batch_state(batch.pk)}\n{logs(cluster)}"


@on_postgresql_only
def test_a_cluster_killed_mid_batch_resumes_after_its_checkpoint(
    batch_client, broker, start_cluster, tmp_path
):
    outcomes = expected_outcomes(LINES, BAD_LINES)
    batch = receive(batch_client, tmp_path, "reminders.7z", batch_text(LINES, BAD_LINES))
    began = time.monotonic()

    first = start_cluster()
    queue_ingest(batch.pk)
    wait_for_kill_point(batch, first)
    # Meanwhile another run of the same batch (here, in this process) is turned away.
    assert batch_ingest(batch_id=batch.pk) == "busy"
    first.kill()
    killed_after = time.monotonic() - began
    assert first.process.returncode == -9, f"the cluster ended by itself\n{logs(first)}"

    at_kill = batch_state(batch.pk)
    checkpoint = at_kill["checkpoint_line"]
    print(
        f"\nkilled after {killed_after:.1f}s: {at_kill}; "
        f"{Notification.objects.filter(batch=batch).count()} notifications stored"
    )
    assert at_kill["status"] == BatchStatus.PROCESSING
    assert KILL_AFTER <= checkpoint < LINES, f"the kill came too late\n{logs(first)}"
    assert checkpoint % CHUNK == 0
    assert at_kill["runs"] == 1
    # What was committed is whole chunks, counted as stored: the chunk the kill
    # interrupted (if any) left nothing.
    assert at_kill["lines_read"] == checkpoint
    assert Notification.objects.filter(batch=batch).count() == at_kill["lines_accepted"]
    assert RejectedLine.objects.filter(batch=batch).count() == at_kill["lines_rejected"]
    assert not Notification.objects.filter(batch=batch, batch_line__gt=checkpoint).exists()
    # The dead run's lease holds until it runs out: nothing is queued again before.
    assert batch_ingest(batch_id=batch.pk) == "busy"
    assert batches_requeue_stalled() == []

    second = start_cluster()
    lease_ran_out = wait_until(
        lambda: Batch.objects.get(pk=batch.pk).lease_expires_at < timezone.now(),
        timeout=LEASE_SECONDS + 5,
        interval=0.1,
    )
    assert lease_ran_out
    assert batches_requeue_stalled() == [batch.pk]
    requeued_after = time.monotonic() - began
    done = wait_until(
        lambda: batch_state(batch.pk)["status"] != BatchStatus.PROCESSING or not second.alive,
        timeout=60,
        interval=0.1,
    )
    elapsed = time.monotonic() - began
    assert done and second.alive, f"after {elapsed:.0f}s: {batch_state(batch.pk)}\n{logs(second)}"

    final = batch_state(batch.pk)
    leftovers = sorted(
        str(path.relative_to(settings.BATCH_WORK_DIR))
        for path in Path(settings.BATCH_WORK_DIR).rglob("*")
        if path.is_file()
    )
    print(
        f"requeued after {requeued_after:.1f}s (lease {LEASE_SECONDS}s), {final['status']} after "
        f"{elapsed:.1f}s: {final}; resumed after line {checkpoint} of {LINES}; "
        f"scratch files left in BATCH_WORK_DIR: {leftovers or 'none'}"
    )
    assert final["runs"] == 2
    assert_each_line_once(batch, outcomes)
    # The dead run's scratch files (the decrypted CSV among them) are gone too.
    assert leftovers == []


def descendants(pid: int, depth: int = 0) -> list[tuple[int, int]]:
    """(pid, depth below `pid`) of every living process under `pid` (Linux: /proc)."""
    found = []
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found += [(int(child), depth + 1), *descendants(int(child), depth + 1)]
    return found


def gone(pid: int) -> bool:
    """Whether `pid` has ended (and been reaped, or is a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@on_postgresql_only
def test_a_worker_killed_mid_batch_is_replaced_and_the_clusters_poll_resumes_the_batch(
    batch_client, broker, start_cluster, tmp_path
):
    outcomes = expected_outcomes(LINES, BAD_LINES)
    batch = receive(batch_client, tmp_path, "worker.7z", batch_text(LINES, BAD_LINES))
    cluster = start_cluster()
    queue_ingest(batch.pk)
    wait_for_kill_point(batch, cluster)
    # qcluster -> its sentinel -> the worker -> the worker's line checker (forked by the
    # ingest): the only process three levels down.
    [checker] = [pid for pid, depth in descendants(cluster.process.pid) if depth == 3]
    worker = int(Path(f"/proc/{checker}/stat").read_text().rsplit(")", 1)[1].split()[1])

    os.kill(worker, signal.SIGKILL)

    # The checker goes with its worker (its pipe breaks); the cluster lives on.
    assert wait_until(lambda: gone(checker), timeout=10), "the line checker outlived its worker"
    at_kill = batch_state(batch.pk)
    assert at_kill["status"] == BatchStatus.PROCESSING
    assert KILL_AFTER <= at_kill["checkpoint_line"] < LINES, f"too late\n{logs(cluster)}"
    assert cluster.alive
    # Once the lease runs out, the inbox poll, run by the cluster's new worker, queues the
    # batch again, and that worker resumes it. (The poll is queued here rather than waiting
    # for the cluster's scheduler, which looks at its schedules every 30 s.)
    assert wait_until(
        lambda: Batch.objects.get(pk=batch.pk).lease_expires_at < timezone.now(),
        timeout=LEASE_SECONDS + 5,
        interval=0.1,
    )
    async_task("batches.tasks.poll_inboxes")
    done = wait_until(
        lambda: batch_state(batch.pk)["status"] != BatchStatus.PROCESSING or not cluster.alive,
        timeout=60,
        interval=0.1,
    )
    assert done and cluster.alive, f"{batch_state(batch.pk)}\n{logs(cluster)}"
    assert batch_state(batch.pk)["runs"] == 2
    assert_each_line_once(batch, outcomes)


# --- two runs at once ------------------------------------------------------------------------


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="the in-memory SQLite test database, shared between threads, locks whole tables "
    '("database table is locked"); CI runs this on PostgreSQL',
)
def test_two_runs_of_one_batch_at_once_one_ingests_and_the_other_is_busy(
    batch_home, batch_client, settings, tmp_path
):
    settings.BATCH_CHUNK_LINES = 100
    count = 1000
    bad = {n: spec for n, spec in BAD_LINES.items() if n <= count}
    outcomes = expected_outcomes(count, bad)
    batch = receive(batch_client, tmp_path, "twice.7z", batch_text(count, bad))
    start = threading.Barrier(2)
    gave_up = threading.Event()
    answers, errors, seen_by_loser = {}, [], {}

    def hold_until_the_other_gave_up(progress_batch: Batch) -> None:
        # The winner's first chunk is stored: it waits (outside any transaction)
        # until the other run has answered, so that the two runs surely overlap.
        gave_up.wait(timeout=15)

    def run(name: str) -> None:
        try:
            start.wait(timeout=10)
            answers[name] = batch_ingest(batch_id=batch.pk, progress=hold_until_the_other_gave_up)
            if answers[name] == "busy":
                seen_by_loser.update(batch_state(batch.pk))
                gave_up.set()
        except Exception as exc:  # reported below, with the thread's name
            errors.append((name, repr(exc)))
            gave_up.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("one", "two")]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - began
    print(
        f"\n[{connection.vendor}] two runs at once: {answers} in {elapsed:.1f}s; "
        f"the loser answered while the batch was {seen_by_loser}"
    )

    assert not errors
    assert sorted(answers.values()) == [BatchStatus.DONE, "busy"]
    # The loser answered while the winner was at work, not after it finished.
    assert seen_by_loser["status"] == BatchStatus.PROCESSING
    assert seen_by_loser["checkpoint_line"] < count
    assert batch_state(batch.pk)["runs"] == 1
    assert_each_line_once(batch, outcomes)
