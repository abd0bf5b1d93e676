"""Real PostgreSQL servers for the tests (a pytest plugin, see tests/conftest.py).

- ``postgres_server`` (session): one server for the session; ``postgres_url`` (function):
  a fresh database on it, ``postgresql://facesearch@127.0.0.1:PORT/<name>``.
- ``cluster(folder)``: a server of the test's own, for a test folder (the contract suites'
  adapters): what it stores is that test's alone, so a check of the bytes a stolen copy of
  the server's files holds (``stored``) sees no other test's rows. Copied from a template
  made once by initdb (a fraction of a second each), stopped when the test ends.

Servers run from ``scripts/engines/postgres.py`` as an unprivileged user, on free ports,
in a folder under /tmp that is removed at the end. When PostgreSQL cannot be installed or
started, the tests that need it skip with the reason; under CI=true they fail.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from scripts.engines import postgres as engine

# The session's folder: set by the first process, inherited by the processes it spawns
# (concurrent writers find the test's server through it).
ENV = "FACESEARCH_TEST_POSTGRES"
_state: dict[str, object] = {}  # "error": why PostgreSQL is unavailable; "mine": our base


def unavailable(reason: str) -> None:
    message = f"PostgreSQL unavailable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _base() -> Path:
    if "error" in _state:
        unavailable(str(_state["error"]))
    known = os.environ.get(ENV)
    if known:
        return Path(known)
    base: Path | None = None
    try:
        # In memory where there is /dev/shm: a server per test is copied and started in a
        # fraction of a second there, seconds on a busy disk.
        shm = Path("/dev/shm")
        memory = shm.is_dir() and os.access(shm, os.W_OK)
        base = Path(tempfile.mkdtemp(prefix="facesearch-pg-", dir=shm if memory else None))
        user = engine.server_user()
        if user:
            shutil.chown(base, user, user)
        engine.initdb(base / "template", wal_segment_mb=1)
    except (engine.Unavailable, OSError) as exc:
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
        _state["error"] = str(exc)
        unavailable(str(exc))
    os.environ[ENV] = str(base)
    _state["mine"] = base
    return base


def _start(folder: Path) -> engine.Server:
    server = engine.running(folder)
    if server is not None:
        return server
    try:
        return engine.start(folder, template=_base() / "template" / "data")
    except engine.Unavailable as exc:
        _state["error"] = str(exc)
        unavailable(str(exc))
        raise


def server() -> engine.Server:
    """The session's shared server."""
    return _start(_base() / "shared")


_started: list[Path] = []  # servers of single tests, stopped when the test ends


def cluster(folder: Path) -> engine.Server:
    """The server of the test folder ``folder`` (started on first use)."""
    name = hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    where = _base() / name
    if engine.running(where) is None:
        _started.append(where)
    return _start(where)


def stored(folder: Path) -> bytes:
    """Every byte in the files of ``folder``'s server, after a checkpoint has written what
    was only in memory: what a stolen copy of its data folder (WAL included) holds."""
    import psycopg

    server = cluster(folder)
    with psycopg.connect(server.url(), autocommit=True) as db:
        db.execute("CHECKPOINT")
    files = sorted(p for p in server.data.rglob("*") if p.is_file())
    return b"".join(p.read_bytes() for p in files)


def database(name: str) -> str:
    """The URL of a fresh database ``name`` on the session's server (dropped first)."""
    import psycopg

    url = server().url()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')
    return server().url(name)


@pytest.fixture(scope="session")
def postgres_server() -> engine.Server:
    return server()


@pytest.fixture
def postgres_url(postgres_server: engine.Server, request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40]
    return database(f"t_{name}_{hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]}")


@pytest.fixture(autouse=True)
def _stop_test_servers() -> Iterator[None]:
    yield
    while _started:
        folder = _started.pop()
        with contextlib.suppress(engine.Unavailable):
            engine.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    base = _state.get("mine")
    if not isinstance(base, Path):
        return
    for folder in sorted(base.iterdir()):
        if folder.is_dir() and folder.name != "template":
            with contextlib.suppress(engine.Unavailable):
                engine.stop(folder)
    shutil.rmtree(base, ignore_errors=True)
    os.environ.pop(ENV, None)
