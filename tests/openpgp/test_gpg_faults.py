"""A gpg that fails for a reason of the platform's, not the file's (killed by a signal we did
not send): the run fails and is tried again, the client is told nothing yet."""

import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from batches.gpg_process import GpgFailed
from batches.inbox import batch_receive
from batches.ingest import batch_ingest
from batches.models import Batch
from tests.batches.conftest import upload
from tests.openpgp import pgp_batches
from tests.openpgp.pgp_batches import ECC

batch_home, bank, pgp_client = pgp_batches.batch_home, pgp_batches.bank, pgp_batches.pgp_client


def our_gpg_decrypting() -> int | None:
    """The pid of the gpg --decrypt this process started, if one runs (from /proc)."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me and words[0] == b"gpg" and b"--decrypt" in words:
            return int(entry.name)
    return None


def kill_gpg_while_it_decrypts(batch_id: int) -> BaseException | None:
    """Ingest in a thread, SIGKILL its gpg --decrypt as soon as it runs; what the run raised."""
    raised = []

    def run():
        try:
            batch_ingest(batch_id=batch_id)
        except BaseException as exc:  # handed to the test
            raised.append(exc)
        finally:
            connection.close()

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    killed = False
    while worker.is_alive() and not killed and time.monotonic() < deadline:
        pid = our_gpg_decrypting()
        if pid:
            os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.002)
    worker.join(120)
    assert killed, "gpg --decrypt was never seen running"
    return raised[0] if raised else None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_gpg_killed_by_a_signal_fails_the_run_which_is_retried_not_the_batch(
    pgp_client, bank, batch_home, settings
):
    # Large and uncompressed, so gpg decrypts long enough to be seen and killed.
    text = "".join(f"{'x' * 180},{n}\n" for n in range(400_000))
    data = bank.encrypt(text, signer=ECC, options=("--compress-algo", "none"))
    upload(pgp_client, "big.pgp", data)
    batch = batch_receive(client=pgp_client, name="big.pgp", queue=False)

    raised = kill_gpg_while_it_decrypts(batch.pk)

    assert isinstance(raised, GpgFailed), raised
    assert "killed by signal 9" in str(raised)
    batch.refresh_from_db()
    assert (batch.status, batch.failure_code, batch.result_path) == ("PROCESSING", "", "")
    assert batch.runs_since_progress == 1
    # The next run, once the lease is over, decrypts it: its lines (no notification lines)
    # are what stops it now, not its encryption.
    settings.BATCH_MAX_REJECTED_LINES = 5
    Batch.objects.filter(pk=batch.pk).update(lease_expires_at=timezone.now() - timedelta(1))
    assert batch_ingest(batch_id=batch.pk) == "FAILED"
    batch.refresh_from_db()
    assert batch.failure_code == "TOO_MANY_REJECTIONS", batch.failure_message
