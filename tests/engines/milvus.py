"""A real Milvus server for the tests marked ``milvus`` (a pytest plugin, see conftest.py).

One server per test session, started by the project's own script (scripts/engines/milvus.py)
from ``.venv-milvus`` with its data in the session's temporary folder, and stopped when
the session ends. Tests use ``milvus_url(name)`` for a collection of their own.

When the server cannot be installed or started, the tests that need it are skipped with
the reason; under ``CI=true`` they fail instead, since CI must run them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _engine_script() -> object:
    spec = importlib.util.spec_from_file_location(
        "facesearch_milvus_engine", ROOT / "scripts" / "engines" / "milvus.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


engine: object = _engine_script()


@dataclass
class MilvusServer:
    """The session's server: its data folder, and start/stop for the fault tests."""

    folder: Path
    url: str

    def collection(self, name: str) -> str:
        """A URL for a collection of the caller's own (``name`` made a valid name)."""
        clean = re.sub(r"[^A-Za-z0-9_]", "_", name)[-200:]
        return f"{self.url.rsplit('/', 1)[0]}/t_{clean}"

    def stop(self) -> None:
        engine.stop(self.folder)  # type: ignore[attr-defined]

    def start(self) -> None:
        engine.start(self.folder)  # type: ignore[attr-defined]


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Milvus is required under CI: {reason}")
    pytest.skip(reason)


_server: MilvusServer | None = None
_failed: str | None = None


def server() -> MilvusServer:
    """The session's server, started on first use (also from tests/contract/adapters.py,
    whose factories are not fixtures); skips (fails under CI) when it cannot start."""
    global _server, _failed
    if _server is None and _failed is None:
        try:
            import pymilvus  # noqa: F401
        except ImportError:
            _failed = "pymilvus is not installed (pip install -e '.[milvus]')"
        else:
            folder = Path(tempfile.mkdtemp(prefix="facesearch-milvus-"))
            try:
                _server = MilvusServer(folder, engine.start(folder))  # type: ignore[attr-defined]
            except engine.MilvusUnavailable as exc:  # type: ignore[attr-defined]
                _failed = f"the Milvus server did not start: {exc}"
                shutil.rmtree(folder, ignore_errors=True)
    if _server is None:
        unavailable(_failed or "no Milvus server")
    assert _server is not None
    return _server


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _server
    if _server is not None:
        _server.stop()
        if exitstatus == 0:
            shutil.rmtree(_server.folder, ignore_errors=True)
        else:  # its logs may say why
            print(f"\nthe Milvus server's data and logs are kept in {_server.folder}")
        _server = None


@pytest.fixture(scope="session")
def milvus_server() -> MilvusServer:
    return server()


def stored(server: MilvusServer, collection: str) -> bytes:
    """Every byte the server keeps in its segment storage for one collection: the insert,
    delete and statistics logs and the index files (not its write-ahead log, see
    docs/scaling.md). What erasure must leave without a removed vector."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=server.url.replace("milvus://", "http://").rsplit("/", 1)[0])
    try:
        if not client.has_collection(collection):
            return b""
        cid = str(client.describe_collection(collection)["collection_id"])
    finally:
        client.close()
    data = server.folder / "data"
    partitions = {p.name for p in (data / "insert_log" / cid).glob("*")}
    out = []
    for kind in ("insert_log", "delta_log", "stats_log", "index_files"):
        for path in sorted((data / kind).rglob("*")):
            parts = set(path.relative_to(data).parts)
            if path.is_file() and (cid in parts or parts & partitions):
                out.append(path.read_bytes())
    return b"".join(out)


@pytest.fixture
def milvus_url(milvus_server: MilvusServer) -> Callable[[str], str]:
    """``milvus_url(name)``: the URL of a collection named after ``name``, on a server
    that runs (a fault test that stopped it leaves it started again)."""
    milvus_server.start()
    return milvus_server.collection
