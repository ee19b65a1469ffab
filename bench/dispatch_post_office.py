"""django-post_office on the email benchmark's terms: the same SMTP sink, message and ceiling.

What a team would pick instead of the platform for email: post_office queues each
email as a row (`mail.send_many`, untimed here) and `manage.py send_queued_mail
--processes N` sends the queue through Django's SMTP backend, BATCH_SIZE emails a
batch, THREADS_PER_PROCESS threads a process. Each configuration below sends
`--emails` emails (the demo application's rendered email: the same subject, text
and HTML as `bench/dispatch.py --medium email`) to the aiosmtpd sink of
bench/dispatch_email.py, in its own process; the clock runs from the command's
start to its exit. The sink's ceiling (one kept-alive smtplib connection) is
measured in the same run; each rate is printed with its ratio to it.

The settings are bench/post_office_settings.py (the project's plus post_office).
The database `--database` is created, migrated and dropped at the end.

    .venv/bin/python bench/dispatch_post_office.py --emails 10000
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dispatch as bench
from dispatch_email import (
    RECIPIENT_EMAIL,
    ceiling_message,
    ceiling_smtplib,
    demo_email,
    print_email_verdict,
)

# (label, processes, BATCH_SIZE, THREADS_PER_PROCESS)
CONFIGURATIONS = [
    ("defaults (1 process, BATCH_SIZE 100, 5 threads)", 1, 100, 5),
    ("--processes 2, BATCH_SIZE 2000, 10 threads", 2, 2000, 10),
]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--ceiling-messages", type=int, default=20_000)
    parser.add_argument("--database", default="kokatto_post_office_bench")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    arguments = parser.parse_args()
    if not 0 < arguments.emails <= 1_000_000 or not 0 < arguments.ceiling_messages <= 1_000_000:
        parser.error("--emails and --ceiling-messages must be 1..1000000")
    # What bench_environment reads.
    arguments.medium, arguments.backend, arguments.workers, arguments.chunk = (
        "email",
        "http",
        1,
        100,
    )
    return arguments


def queue_emails(count: int, from_email: str, subject: str, text: str, html: str) -> float:
    from post_office import mail

    started = time.perf_counter()
    for first in range(0, count, 2000):
        mail.send_many(
            [
                {
                    "recipients": [RECIPIENT_EMAIL],
                    "sender": from_email,
                    "subject": subject,
                    "message": text,
                    "html_message": html,
                }
                for _ in range(first, min(count, first + 2000))
            ]
        )
    return time.perf_counter() - started


def main() -> int:
    arguments = parse_arguments()
    temporary = Path(tempfile.mkdtemp(prefix="kokatto-post-office-bench-"))
    (temporary / "var").mkdir()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    sink = bench.Sink("smtp")  # forked before Django is set up in this process
    try:
        env = bench.bench_environment(arguments, temporary, sink.port)
        env.update(
            DJANGO_SETTINGS_MODULE="post_office_settings",
            PYTHONPATH=f"{bench.PROJECT_DIR}{os.pathsep}{bench.PROJECT_DIR / 'bench'}",
        )
        print(f"sink: aiosmtpd on {bench.HOST}:{sink.port}; database {arguments.database}")
        bench.recreate_database(arguments.postgres, arguments.database)
        bench.manage(env, "migrate", "--noinput")
        bench.manage(env, "seed_demo", "--force")
        os.environ.update(env)
        sys.path.insert(0, str(bench.PROJECT_DIR / "bench"))
        import django

        django.setup()
        from email.utils import parseaddr

        from django.conf import settings

        subject, text, html = demo_email(bench.CLIENT_ID, bench.APP_CODE, bench.PARAMS)
        message = ceiling_message(settings.DEFAULT_FROM_EMAIL, subject, text, html)
        bench.idle_check()
        ceiling, refused = ceiling_smtplib(
            sink.port,
            parseaddr(settings.DEFAULT_FROM_EMAIL)[1],
            message,
            arguments.ceiling_messages,
        )
        print(
            f"sink ceiling: {ceiling:.0f} messages/s ({arguments.ceiling_messages} messages, "
            f"smtplib, one kept-alive connection{f'; !! {refused} refused' if refused else ''})"
        )
        ok = True
        for label, processes, batch, threads in CONFIGURATIONS:
            sink.ask("reset")
            seconds = queue_emails(
                arguments.emails, settings.DEFAULT_FROM_EMAIL, subject, text, html
            )
            print(f"\npost_office {label}: queued {arguments.emails} in {seconds:.1f} s (untimed)")
            run_env = {
                **env,
                "POST_OFFICE_BATCH_SIZE": str(batch),
                "POST_OFFICE_THREADS_PER_PROCESS": str(threads),
            }
            bench.idle_check()
            started = time.perf_counter()
            subprocess.run(  # noqa: S603 (a fixed command line, no shell)
                [
                    sys.executable,
                    str(bench.PROJECT_DIR / "manage.py"),
                    "send_queued_mail",
                    "--processes",
                    str(processes),
                    "--lockfile",
                    str(temporary / "post_office"),
                ],
                cwd=bench.PROJECT_DIR,
                env=run_env,
                check=True,
                capture_output=True,
                timeout=900,
            )
            seconds = time.perf_counter() - started
            report = sink.ask("report")
            rate = report["count"] / seconds
            load = os.getloadavg()
            print(
                f"  {report['count']} messages in {seconds:.2f} s: {rate:.1f} messages/s, "
                f"{rate / ceiling:.3f} x the ceiling (load {load[0]:.2f})"
            )
            ok = print_email_verdict(arguments.emails, report, rate, ceiling) and ok
        return 0 if ok else 1
    finally:
        sink.stop()
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        bench.drop_database(arguments.postgres, arguments.database)
        shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
