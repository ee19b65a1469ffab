"""Upload throughput of the SFTP gateway, against OpenSSH's own sftp-server in the same run.

What it measures: OpenSSH's `sftp -b` putting a `--megabytes` file (default 10, random
bytes: nothing to compress), timed two ways: the put alone (between two `!date` commands
of the same batch, so connection, key exchange, login and session start are left out) and
the whole command from start to exit (what a client's script waits for). One stream, and
`--streams` (default 8) at once, each its own connection: their bytes over the time from
the first put's start to the last one's end. `--rounds` times each (median reported).
The same client and key against two servers:

- the gateway, `manage.py run_sftp_gateway` in a child process with DEBUG off, on a
  PostgreSQL database of its own (`kokatto_gateway_bench`, dropped and created, migrated,
  `seed_demo --force`: the upload goes to the demo account `bankdemo`'s /inbox by its
  key, each close records the batch and queues its ingest in Redis `--redis-url`, db 2,
  flushed; no qcluster runs), batch storage on local disk in a temporary folder;
- Debian's `openssh-server`: `sshd -D -e -f <own config>` on a free loopback port, its
  own host key, `AuthorizedKeysFile` holding the same key, `Subsystem sftp
  /usr/lib/openssh/sftp-server`, writing into the same temporary folder's disk.

It prints MB/s (MB = 10^6 bytes) for each, and the ratio gateway / OpenSSH. Targets
(issue 17): a 10 MB upload in under a second, the one-stream ratio at least 0.3.

`--profile`: one more upload into a gateway running in this process, every thread it
starts under cProfile (the transport's thread: packets and decryption; the SFTP
subsystem's: requests and writes), the top functions by own time.

Needs `sshd` (apt-get install openssh-server; `make bench-tools`) and `sftp`,
PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379.
Runs as root (sshd's privilege separation needs /run/sshd, created if missing) or as
any user (sshd then serves only that user).

    .venv/bin/python bench/gateway_upload.py
    .venv/bin/python bench/gateway_upload.py --rounds 5 --profile
"""

import argparse
import contextlib
import cProfile
import getpass
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from support import drop_database, manage, recreate_database  # noqa: E402

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
INSTALL = "apt-get install -y --no-install-recommends openssh-server openssh-client"


def tool(name: str) -> str:
    return shutil.which(name) or name


def run(command: list, **options) -> subprocess.CompletedProcess:
    return subprocess.run(command, **options)  # noqa: S603 (fixed command lines, no shell)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=10, help="size of each file")
    parser.add_argument("--streams", type=int, default=8, help="uploads at once")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each; median shown")
    parser.add_argument("--profile", action="store_true", help="profile one gateway upload")
    parser.add_argument("--database", default="kokatto_gateway_bench")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/2")
    arguments = parser.parse_args()
    if not 1 <= arguments.megabytes <= 1000 or not 1 <= arguments.streams <= 32:
        parser.error("--megabytes 1..1000, --streams 1..32")
    if not 1 <= arguments.rounds <= 20:
        parser.error("--rounds 1..20")
    return arguments


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on port {port}")


def bench_environment(arguments, temporary: Path) -> dict[str, str]:
    from cryptography.fernet import Fernet

    dropped = {"DEBUG", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH", "DATABASE_URL"}
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update(
        DATABASE_URL=f"{arguments.postgres}/{arguments.database}",
        REDIS_URL=arguments.redis_url,
        DEBUG="false",
        SECRET_KEY=f"kokatto-gateway-bench-{uuid.uuid4().hex}",
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        KOKATTO_VAR_DIR=str(temporary / "var"),
        DJANGO_SETTINGS_MODULE="kokatto_site.settings",
        PYTHONPATH=str(PROJECT_DIR),
    )
    return env


def flush_redis(url: str) -> None:
    with contextlib.suppress(Exception):
        import redis

        redis.Redis.from_url(url).flushdb()


def start_sshd(temporary: Path, key: Path) -> tuple[subprocess.Popen, int]:
    """OpenSSH's server on a free loopback port, serving only `key`, in the foreground."""
    folder = temporary / "sshd"
    folder.mkdir()
    host_key = folder / "host_key"
    run([tool("ssh-keygen"), "-q", "-N", "", "-t", "ed25519", "-f", host_key], check=True)
    public = run(
        [tool("ssh-keygen"), "-y", "-f", key], check=True, capture_output=True, text=True
    ).stdout
    (folder / "authorized_keys").write_text(public)
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {host_key}\n"
        f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        f"Subsystem sftp {SFTP_SERVER}\nLogLevel ERROR\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation's chroot
    command = [SSHD, "-D", "-e", "-f", str(config)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE)  # noqa: S603 (fixed, no shell)
    wait_for_port(port, process, "sshd")
    return process, port


def ssh_options(port: int, key: Path) -> list[str]:
    options = {
        "StrictHostKeyChecking": "no",
        "UserKnownHostsFile": "/dev/null",
        "BatchMode": "yes",
        "IdentitiesOnly": "yes",
        "LogLevel": "ERROR",
    }
    return ["-p", str(port), "-i", str(key)] + [
        item for name, value in options.items() for item in ("-o", f"{name}={value}")
    ]


def sftp_put(user, port, key, local: Path, remote: str) -> tuple[float, float, float]:
    """One `sftp -b` putting `local`: the seconds of the whole command (connect, log in,
    put, exit), and the clock times (epoch seconds) at which the put started and ended,
    read by `!date` commands in the same batch on either side of it."""
    options = ssh_options(port, key)
    options[0] = "-P"  # sftp's port flag
    stamp = f"!{tool('date')} +STAMP%s.%N"
    started = time.perf_counter()
    finished = run(
        [tool("sftp"), "-b", "-", *options, f"{user}@127.0.0.1"],
        input=f"{stamp}\nput {local} {remote}\n{stamp}\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"sftp put to port {port} failed: {finished.stderr.strip()}")
    put_start, put_end = (
        float(word[len("STAMP") :])
        for word in finished.stdout.split()
        if word.startswith("STAMP") and word[len("STAMP") :][:1].isdigit()
    )
    return seconds, put_start, put_end


def measure(arguments, user, port, key, files, remote) -> dict[str, float]:
    """Medians: MB/s of one upload and of `--streams` at once (their bytes over the time
    from the first put's start to the last one's end), and the seconds of one whole `sftp`
    command."""
    megabytes = files[0].stat().st_size / 1e6
    single, parallel, whole = [], [], []
    for round_number in range(arguments.rounds):
        seconds, put_start, put_end = sftp_put(
            user, port, key, files[0], remote(f"one-{round_number}")
        )
        whole.append(seconds)
        single.append(megabytes / (put_end - put_start))
        times = [None] * arguments.streams

        def stream(index, path, round_number=round_number, times=times):
            times[index] = sftp_put(user, port, key, path, remote(f"many-{round_number}-{index}"))

        threads = [
            threading.Thread(target=stream, args=(index, path))
            for index, path in enumerate(files[: arguments.streams])
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        first = min(start for _, start, _ in times)
        last = max(end for _, _, end in times)
        parallel.append(megabytes * arguments.streams / (last - first))
    return {
        "one": statistics.median(single),
        "many": statistics.median(parallel),
        "whole": statistics.median(whole),
    }


def profile_gateway(env: dict[str, str], key: Path, path: Path) -> None:
    """One upload into a gateway in this process, every thread it starts under cProfile."""
    import pstats

    os.environ.update(env)
    import django

    django.setup()
    import paramiko

    from batches.gateway.sftp import SftpGateway

    profiles = []
    # paramiko's Transport is a thread with a run() of its own; every other thread
    # (the connection's, the SFTP subsystem's) runs threading.Thread.run.
    originals = {paramiko.Transport: paramiko.Transport.run, threading.Thread: threading.Thread.run}

    def profiled(run_thread):
        def run_profiled(thread):
            profiler = cProfile.Profile()
            profiler.enable()
            try:
                run_thread(thread)
            finally:
                profiler.disable()
                profiles.append(profiler)

        return run_profiled

    gateway = SftpGateway("127.0.0.1", 0)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    for cls, original in originals.items():
        cls.run = profiled(original)
    try:
        seconds, _, _ = sftp_put("bankdemo", gateway.address[1], key, path, "/inbox/profiled.7z")
        time.sleep(0.5)  # the connection's threads end after the client's exit
    finally:
        for cls, original in originals.items():
            cls.run = original
        gateway.shutdown()
    print(f"\nProfile of one upload into an in-process gateway ({seconds:.2f} s under cProfile):")
    stats = pstats.Stats(*profiles)
    # Waiting (lock acquire, select) is the threads handing work to each other, not work.
    stats.strip_dirs().sort_stats("tottime").print_stats(30)


def main() -> int:
    arguments = parse_arguments()
    missing = [tool for tool in (SSHD, SFTP_SERVER) if not Path(tool).exists()]
    missing += [tool for tool in ("sftp", "ssh-keygen") if not shutil.which(tool)]
    if missing:
        print(f"Missing {', '.join(missing)}: {INSTALL} (or make bench-tools)")
        return 2
    temporary = Path(tempfile.mkdtemp(prefix="kokatto-gateway-bench-"))
    env = bench_environment(arguments, temporary)
    processes = []
    try:
        recreate_database(arguments.postgres, arguments.database)
        flush_redis(arguments.redis_url)
        manage(env, "migrate", "--no-input")
        manage(env, "seed_demo", "--force")
        key = temporary / "var" / "demo_sftp_key"
        key.chmod(0o600)
        files = []
        for number in range(arguments.streams):
            path = temporary / f"upload-{number}.7z"
            path.write_bytes(os.urandom(arguments.megabytes * 1_000_000))
            files.append(path)

        gateway_port = free_port()
        gateway = subprocess.Popen(  # noqa: S603 (a fixed command line, no shell)
            [sys.executable, "manage.py", "run_sftp_gateway", "--port", str(gateway_port)],
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(gateway)
        wait_for_port(gateway_port, gateway, "run_sftp_gateway")
        sshd, sshd_port = start_sshd(temporary, key)
        processes.append(sshd)
        received = temporary / "openssh-received"
        received.mkdir()

        print(
            f"{arguments.megabytes} MB files of random bytes, OpenSSH's sftp -b, median of "
            f"{arguments.rounds} rounds. MB/s (10^6 bytes) of the put alone (timed by !date "
            "in the sftp batch); seconds of a whole sftp command (connect, log in, put)."
        )
        ours = measure(
            arguments,
            "bankdemo",
            gateway_port,
            key,
            files,
            lambda name: f"/inbox/{name}.7z",
        )
        theirs = measure(
            arguments,
            getpass.getuser(),
            sshd_port,
            key,
            files,
            lambda name: str(received / f"{name}.7z"),
        )
        print(f"{'':34}{'gateway':>10}{'OpenSSH':>10}{'ratio':>8}")
        for label, name in (
            ("one upload, MB/s", "one"),
            (f"{arguments.streams} uploads at once, MB/s", "many"),
            ("a whole sftp command, seconds", "whole"),
        ):
            print(f"{label:<34}{ours[name]:>10.2f}{theirs[name]:>10.2f}", end="")
            print(f"{ours[name] / theirs[name]:>8.2f}" if name != "whole" else "")
        if arguments.profile:
            for process in processes:
                process.terminate()
            profile_gateway(env, key, files[0])
        return 0
    finally:
        for process in processes:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        flush_redis(arguments.redis_url)
        drop_database(arguments.postgres, arguments.database)
        shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
