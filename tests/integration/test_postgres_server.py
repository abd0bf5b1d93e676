"""The project's own PostgreSQL server (scripts/engines/postgres.py), as tests use it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from scripts.engines import postgres as engine

from ..engines.postgres import _base

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def test_each_test_gets_a_fresh_empty_database_of_its_own(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as db:
        tables = db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
        db.execute("CREATE TABLE t (x int)")
        (name,) = db.execute("SELECT current_database()").fetchone() or ("",)
    assert postgres_url.endswith(f"/{name}") and name.startswith("t_test_each_test")


def test_the_server_runs_as_an_unprivileged_user(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as db:
        (data,) = db.execute("SHOW data_directory").fetchone() or ("",)
    assert os.stat(data).st_uid != 0
    # The server wrote postmaster.pid itself: its owner is the server's user. (Not
    # /proc/PID: sandboxes may show another PID namespace there, or hide other users.)
    assert os.stat(Path(data) / "postmaster.pid").st_uid != 0


def test_the_script_starts_a_server_on_a_free_port_and_stops_it() -> None:
    folder = _base() / "script-test"
    run = [sys.executable, str(ROOT / "scripts" / "engines" / "postgres.py")]
    started = subprocess.run([*run, "start", str(folder)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    try:
        assert url.startswith(f"postgresql://{engine.SUPERUSER}@127.0.0.1:")
        with psycopg.connect(url) as db:
            assert db.execute("SELECT 1").fetchone() == (1,)
    finally:
        stopped = subprocess.run([*run, "stop", str(folder)], capture_output=True, text=True)
    assert stopped.returncode == 0, stopped.stderr
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=3)


def test_the_script_says_in_one_line_what_it_needs() -> None:
    run = [sys.executable, str(ROOT / "scripts" / "engines" / "postgres.py")]
    done = subprocess.run([*run, "begin"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "usage" in done.stderr
