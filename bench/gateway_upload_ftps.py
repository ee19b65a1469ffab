"""Upload MB/s through the FTPS gateway against a bare pyftpdlib FTPS server, as a ratio.

Run: .venv/bin/python bench/gateway_upload_ftps.py [--megabytes 10] [--rounds 3]

Measures a client's upload of a `--megabytes` file (random bytes) with `curl --ssl-reqd`
(TLS on control and data, PROT P), one stream and then eight at once, to two servers
started by this script in this process on loopback ports:
- our gateway (batches/gateway/ftps.py): a password login through the accounts service
  (PBKDF2 hash, defender, audit row), the upload hashed and counted into ClientHome's hidden
  name, renamed and received as a batch (a row, its ingest queued in the ORM broker);
- pyftpdlib's own ThreadedFTPServer with TLS_FTPHandler and a DummyAuthorizer writing
  straight to a local folder: the floor of the library itself.
Both use the same TLS context (ftps_ssl_context: TLS 1.2+, the same certificate), so the
ratio is the gateway's own cost, logins included; the time of a login and a listing
alone (curl -l) is printed too, since the password hash dominates a 10 MB upload, and the
rate of one upload from its STOR to its end (curl's time_total - time_pretransfer). MB/s =
bytes uploaded ÷ wall-clock time from starting the curl processes to the last one ending,
best of `--rounds`. The database is
a fresh SQLite file under a temporary KOKATTO_VAR_DIR unless DATABASE_URL is set (use a
database of your own: it is migrated and written to). Past runs: bench/RESULTS.md.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kokatto_site.settings")
os.environ.setdefault("KOKATTO_VAR_DIR", tempfile.mkdtemp(prefix="kokatto-bench-ftps-"))

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from pyftpdlib.authorizers import DummyAuthorizer  # noqa: E402
from pyftpdlib.handlers import TLS_FTPHandler  # noqa: E402
from pyftpdlib.ioloop import IOLoop  # noqa: E402
from pyftpdlib.servers import ThreadedFTPServer  # noqa: E402

from batches.gateway.accounts import gateway_account_create  # noqa: E402
from batches.gateway.ftps import FtpsGateway, ftps_ssl_context  # noqa: E402
from batches.models import GatewayAccount  # noqa: E402
from clients.models import Client  # noqa: E402

USER, PASSWORD = "bench-ftps", "bench-ftps-password"


class BareServer:
    """pyftpdlib's TLS server over a local folder, stopped like FtpsGateway."""

    def __init__(self, folder: Path):
        authorizer = DummyAuthorizer()
        authorizer.add_user(USER, PASSWORD, str(folder), perm="elradfmw")
        handler = type(
            "BareHandler",
            (TLS_FTPHandler,),
            {
                "authorizer": authorizer,
                "ssl_context": ftps_ssl_context(
                    settings.FTPS_CERTIFICATE, settings.FTPS_PRIVATE_KEY
                ),
                "tls_control_required": True,
                "tls_data_required": True,
            },
        )
        server_class = type(
            "BareThreadedServer",
            (ThreadedFTPServer,),
            {"_exit": threading.Event(), "_lock": threading.Lock()},
        )
        self.server = server_class(("127.0.0.1", 0), handler, ioloop=IOLoop())
        self.address = self.server.address
        self.stopping = False

    def serve_forever(self):
        while not self.stopping:
            self.server.serve_forever(timeout=0.5, blocking=False, handle_exit=False)
        self.server.close_all()

    def shutdown(self):
        self.stopping = True


def upload_rate(address, upload: Path, streams: int, round_number: int, certificate: Path):
    """MB/s of `streams` curl uploads of `upload` at once."""
    host, port = address
    commands = [
        [
            "curl",
            "--silent",
            "--show-error",
            "--ssl-reqd",
            "--cacert",
            str(certificate),
            "-T",
            str(upload),
            f"ftp://{USER}:{PASSWORD}@{host}:{port}/inbox/{streams}x-r{round_number}-s{stream}.7z",
        ]
        for stream in range(streams)
    ]
    started = time.perf_counter()
    # A fixed command line, no shell.
    processes = [subprocess.Popen(command) for command in commands]  # noqa: S603
    if any(process.wait() for process in processes):
        raise SystemExit("an upload failed")
    elapsed = time.perf_counter() - started
    return streams * upload.stat().st_size / elapsed / 1e6


def login_seconds(address, certificate: Path) -> float:
    """Seconds of one curl run that logs in and lists /inbox: the fixed cost of an upload."""
    host, port = address
    command = ["curl", "-sS", "--ssl-reqd", "--cacert", str(certificate), "-l", "-o", "/dev/null"]
    started = time.perf_counter()
    subprocess.run([*command, f"ftp://{USER}:{PASSWORD}@{host}:{port}/inbox/"], check=True)  # noqa: S603
    return time.perf_counter() - started


def transfer_rate(address, upload: Path, name: str, certificate: Path) -> float:
    """MB/s of one upload from STOR to its end (curl's time_total - time_pretransfer)."""
    host, port = address
    url = f"ftp://{USER}:{PASSWORD}@{host}:{port}/inbox/{name}"
    timing = ["-w", "%{time_pretransfer} %{time_total}", "-o", "/dev/null"]
    command = ["curl", "-sS", "--ssl-reqd", "--cacert", str(certificate), *timing, "-T"]
    finished = subprocess.run(  # noqa: S603
        [*command, str(upload), url], check=True, capture_output=True, text=True
    )
    pretransfer, total = (float(value) for value in finished.stdout.split())
    return upload.stat().st_size / (total - pretransfer) / 1e6


def best_rate(server, upload, streams, rounds, certificate) -> tuple[float, float, float]:
    """(best MB/s, best login-and-list seconds, best transfer-only MB/s) of `server`."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        rate = max(
            upload_rate(server.address, upload, streams, number, certificate)
            for number in range(rounds)
        )
        login = min(login_seconds(server.address, certificate) for _ in range(rounds))
        transfer = max(
            transfer_rate(server.address, upload, f"t{streams}-r{number}.7z", certificate)
            for number in range(rounds)
        )
        return rate, login, transfer
    finally:
        server.shutdown()
        thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    call_command("migrate", verbosity=0)
    client, _ = Client.objects.get_or_create(client_id="bench", defaults={"name": "Bench"})
    if not GatewayAccount.objects.filter(username=USER).exists():
        gateway_account_create(client=client, username=USER, password=PASSWORD, protocols=["ftps"])
    scratch = Path(tempfile.mkdtemp(prefix="kokatto-bench-ftps-files-"))
    upload = scratch / "upload.bin"
    upload.write_bytes(os.urandom(options.megabytes * 1_000_000))
    certificate = scratch / "certificate.pem"
    certificate.write_text(settings.FTPS_CERTIFICATE)
    (scratch / "bare" / "inbox").mkdir(parents=True)

    print(f"{options.megabytes} MB upload with curl --ssl-reqd, best of {options.rounds}:")
    for streams in (1, 8):
        gateway, bare_server = FtpsGateway("127.0.0.1", 0), BareServer(scratch / "bare")
        ours, our_login, our_transfer = best_rate(
            gateway, upload, streams, options.rounds, certificate
        )
        bare, bare_login, bare_transfer = best_rate(
            bare_server, upload, streams, options.rounds, certificate
        )
        print(
            f"  {streams} stream{'s' if streams > 1 else ' '}: gateway {ours:7.1f} MB/s, "
            f"bare pyftpdlib {bare:7.1f} MB/s, ratio {ours / bare:.2f}"
        )
    print(
        f"  a login and a listing alone: gateway {our_login * 1000:.0f} ms, "
        f"bare pyftpdlib {bare_login * 1000:.0f} ms"
    )
    print(
        f"  one upload from STOR to its end: gateway {our_transfer:.1f} MB/s, "
        f"bare pyftpdlib {bare_transfer:.1f} MB/s, ratio {our_transfer / bare_transfer:.2f}"
    )


if __name__ == "__main__":
    main()
