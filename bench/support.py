"""Set-up shared by the benchmarks: a fresh PostgreSQL database and manage.py commands."""

import subprocess
import sys
from pathlib import Path

import psycopg

PROJECT_DIR = Path(__file__).resolve().parent.parent


def recreate_database(server_url: str, name: str) -> None:
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *arguments: str) -> str:
    """Run `manage.py ARGUMENTS` with `env`; its stdout, or exit with its error."""
    command = [sys.executable, str(PROJECT_DIR / "manage.py"), *arguments]
    completed = subprocess.run(  # noqa: S603 (a fixed command line, no shell)
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    if completed.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(arguments)} failed:\n{completed.stderr[-3000:]}")
    return completed.stdout
