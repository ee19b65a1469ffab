"""The throwaway gpg homes: under OPENPGP_HOME_DIR, and swept when a killed process left one
behind with a client's platform private key in it and its gpg-agent running."""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from batches.gpg_process import gpg_import
from batches.openpgp_keys import (
    HOME_SWEEP_MARGIN_SECONDS,
    generate_key_pair,
    gnupg_home,
    gnupg_home_new,
    gnupg_homes_sweep,
)
from tests.openpgp import pgp_batches
from tests.openpgp.conftest import gnupg_required
from tests.openpgp.pgp_batches import ECC, ingest, lines_csv

batch_home, bank, pgp_client = pgp_batches.batch_home, pgp_batches.bank, pgp_batches.pgp_client


@pytest.fixture
def home_dir(settings):
    gnupg_required()
    root = Path(tempfile.mkdtemp(prefix="kh-"))  # short: the agent's sockets go inside
    settings.OPENPGP_HOME_DIR = root / "homes"
    yield settings.OPENPGP_HOME_DIR
    settings.OPENPGP_GPG_SECONDS = -HOME_SWEEP_MARGIN_SECONDS - 3600  # every home is stale
    gnupg_homes_sweep()  # agents included, whatever a test left
    shutil.rmtree(root, ignore_errors=True)


def agents_of(home: Path) -> list[int]:
    """The pids of the gpg-agent processes serving ``home`` (from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or gone
            continue
        if words and words[0].endswith(b"gpg-agent") and str(home).encode() in words:
            pids.append(int(entry.name))
    return pids


def running(pid: int) -> bool:
    """Whether the process is there and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def home_with_a_private_key_and_its_agent() -> Path:
    """What a worker killed in the middle of a decryption leaves: a home under
    OPENPGP_HOME_DIR, a platform private key imported in it, its gpg-agent running."""
    private, _, _ = generate_key_pair("Kokatto batches for a killed worker")
    home = gnupg_home_new()
    gpg_import(home, private, seconds=30)
    assert list((home / "private-keys-v1.d").iterdir())
    assert agents_of(home)
    return home


def backdate(home: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(home, (past, past))


def test_a_gpg_home_is_made_under_the_home_dir_private_and_removed_after_use(home_dir):
    with gnupg_home() as gpg:
        home = Path(gpg.gnupghome)
        assert home.parent == home_dir
        assert (home.stat().st_mode & 0o777, home_dir.stat().st_mode & 0o777) == (0o700, 0o700)
    assert not home.exists()


def test_the_default_home_dir_is_a_tmpfs_when_there_is_one():
    from django.conf import settings

    if not settings.TMPFS.is_dir() or os.environ.get("OPENPGP_HOME_DIR"):
        pytest.skip("no tmpfs here, or OPENPGP_HOME_DIR set")
    assert settings.OPENPGP_HOME_DIR.parent == settings.TMPFS


def test_a_home_left_by_a_killed_worker_is_removed_with_its_agent(settings, home_dir):
    settings.OPENPGP_GPG_SECONDS = 240
    left = home_with_a_private_key_and_its_agent()
    agents = agents_of(left)
    backdate(left, 240 + HOME_SWEEP_MARGIN_SECONDS + 5)

    assert gnupg_homes_sweep() == [left]

    assert not left.exists()
    deadline = time.monotonic() + 10
    while any(map(running, agents)) and time.monotonic() < deadline:  # it takes a moment
        time.sleep(0.1)
    assert not [pid for pid in agents if running(pid)]


def test_a_live_operations_home_is_left_alone(settings, home_dir):
    settings.OPENPGP_GPG_SECONDS = 240
    live = home_with_a_private_key_and_its_agent()
    backdate(live, 240)  # as old as a gpg run may last: still within the margin

    assert gnupg_homes_sweep() == []

    assert (live / "private-keys-v1.d").is_dir()
    assert agents_of(live)


def test_a_home_dir_of_another_user_or_open_to_others_is_not_used_as_is(home_dir):
    home_dir.mkdir(mode=0o755)
    home_dir.chmod(0o755)
    with gnupg_home():
        assert home_dir.stat().st_mode & 0o777 == 0o700
    home_dir.rmdir()
    home_dir.symlink_to(tempfile.gettempdir())
    with pytest.raises(RuntimeError, match="is not a directory of this user"), gnupg_home():
        pass
    home_dir.unlink()


@pytest.mark.django_db
def test_an_ingest_run_sweeps_the_homes_killed_workers_left(settings, home_dir, pgp_client, bank):
    settings.OPENPGP_GPG_SECONDS = 240
    left = home_with_a_private_key_and_its_agent()
    backdate(left, 240 + HOME_SWEEP_MARGIN_SECONDS + 5)

    batch = ingest(pgp_client, "swept.pgp", bank.encrypt(lines_csv("SW-1"), signer=ECC))

    assert batch.status == "DONE", batch.failure_message
    assert not left.exists()
    assert list(home_dir.iterdir()) == []  # the run's own homes are gone too
