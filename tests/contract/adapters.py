"""Every adapter of every port, in one place: the contract suites are parametrised over these.

A new backend is one entry here (plus a marker, e.g. ``postgres``, when it needs a server):
the suites in this folder then run against it with no other change. This is also the only
module of the tests that imports adapter classes or builds them, so when an adapter moves,
only this file changes.

Each factory takes an empty folder of the test's own (an embedded adapter keeps its files
there; a server-backed one would name its database or collection after it) and returns an
open adapter; calling it again on the same folder opens a second connection to the same
store (for reopening and for concurrent writers). ``stored`` returns every byte the adapter
keeps (its files, journals included): what a stolen copy of the store holds, for the checks
that no plaintext template is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from facesearch.accounts.ports import AccountStore as AccountStore
from facesearch.accounts.postgres import PostgresAccountStore
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.catalog.ports import Catalog, Locks
from facesearch.catalog.postgres.audit import PostgresAuditStore
from facesearch.catalog.postgres.catalog import PostgresCatalog
from facesearch.catalog.postgres.locks import AdvisoryLocks
from facesearch.catalog.postgres.suppression import PostgresSuppressionStore
from facesearch.catalog.sqlite import SqliteCatalog
from facesearch.catalog.sqlite_audit import SqliteAuditStore
from facesearch.catalog.sqlite_locks import FileLocks
from facesearch.catalog.sqlite_suppression import SqliteSuppressionStore
from facesearch.governance.audit import AnchorStore, AuditLog
from facesearch.governance.suppression import SuppressionList
from facesearch.index.local.faiss_ivf import FaissIvfIndex
from facesearch.index.local.flat import FlatFileIndex
from facesearch.index.local.memory import MemoryIndex
from facesearch.index.local.rerank import ExactRerankIndex
from facesearch.security.sealing import Sealer
from facesearch.security.templates import TemplateCodec

from ..engines import postgres as pg

Marks = Sequence[pytest.MarkDecorator]
# The suites' type hints: the accounts port, and the suppression list and the hash chain
# as governance builds them over each adapter's store (catalog.ports.SuppressionStore and
# AuditStore).
SuppressionStore = SuppressionList
AuditChain = AuditLog
# A fixed 32-byte key for the sealed (encrypted at rest) variants.
SEALER_KEY = bytes(range(32))


def params(adapters: dict[str, Any]) -> list[Any]:
    """``pytest.param`` for each adapter, sorted, with its marks: for ``params=``."""
    return [
        pytest.param(name, marks=list(adapters[name].marks), id=name) for name in sorted(adapters)
    ]


def files_bytes(folder: Path) -> bytes:
    """Everything kept in the files under ``folder`` (an embedded store's whole state)."""
    if not folder.exists():
        return b""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def pg_database(folder: Path) -> str:
    """The URL of the test folder's own database on the session's PostgreSQL server, made
    on first use (cheaper than a server of its own, ``pg.cluster``, where no check reads
    the bytes the server keeps, or only checks that something is absent from them)."""
    import psycopg

    name = "f_" + hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    with psycopg.connect(pg.server().url(), autocommit=True) as db:
        if db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return pg.server().url(name)
        # Another process of the test may make it first.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase):
            db.execute(f'CREATE DATABASE "{name}"')
    return pg.server().url(name)


def pg_database_stored(folder: Path) -> bytes:
    """The files of the folder's database and the server's write-ahead log, after a
    checkpoint: a superset of what the database's rows left on disk (the log holds other
    tests' rows too), for checks that something is absent."""
    import psycopg

    with psycopg.connect(pg_database(folder), autocommit=True) as db:
        db.execute("CHECKPOINT")
        found = db.execute("SELECT oid FROM pg_database WHERE datname = current_database()")
        oid = (found.fetchone() or ("?",))[0]
    data = pg.server().data
    files = sorted((data / "base" / str(oid)).rglob("*")) + sorted((data / "pg_wal").rglob("*"))
    return b"".join(p.read_bytes() for p in files if p.is_file())


# -- catalog ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogAdapter:
    open: Callable[[Path], Catalog]
    stored: Callable[[Path], bytes]
    sealed: bool  # templates encrypted at rest
    marks: Marks = ()


CATALOGS: dict[str, CatalogAdapter] = {
    "sqlite": CatalogAdapter(
        lambda d: SqliteCatalog(d / "catalog.sqlite", TemplateCodec(Sealer(None))),
        files_bytes,
        False,
    ),
    "sqlite-sealed": CatalogAdapter(
        lambda d: SqliteCatalog(d / "catalog.sqlite", TemplateCodec(Sealer(SEALER_KEY))),
        files_bytes,
        True,
    ),
    # A server of the test's own (tests/engines/postgres.py): ``stored`` is every file of
    # its data folder, the write-ahead log included, after a checkpoint.
    "postgres": CatalogAdapter(
        lambda d: PostgresCatalog(pg.cluster(d).url(), TemplateCodec(Sealer(None))),
        pg.stored,
        False,
        (pytest.mark.postgres,),
    ),
    "postgres-sealed": CatalogAdapter(
        lambda d: PostgresCatalog(pg.cluster(d).url(), TemplateCodec(Sealer(SEALER_KEY))),
        pg.stored,
        True,
        (pytest.mark.postgres,),
    ),
}


# -- vector index -------------------------------------------------------------------------
Lookup = Callable[[Sequence[int]], tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]


@dataclass(frozen=True)
class IndexOptions:
    """What the engine hands an index: the expected size (to plan an IVF) and the
    catalog's lookup of exact embeddings (for re-ranking)."""

    expected: int
    lookup: Lookup
    nprobe: int = 16


@dataclass(frozen=True)
class IndexAdapter:
    open: Callable[[Path, IndexOptions], Any]
    exact: bool  # reports exact similarities (not estimates)
    recall: float  # required recall@10 against exact search
    persistent: bool  # keeps its vectors in files under the folder (reopens with them)
    erases_at_once: bool  # a removed vector leaves the files on remove, not on compact
    marks: Marks = ()
    stored: Callable[[Path], bytes] = files_bytes  # every byte kept for the folder's index
    # Seconds after compact() within which the compacted-away files leave the storage
    # (Milvus's garbage collector; the test servers run it every 2 s).
    erase_delay: float = 0.0


def _ivf(d: Path, o: IndexOptions) -> FaissIvfIndex:
    return FaissIvfIndex(d, expected=o.expected, nprobe=o.nprobe)


def rerank_over_ivf(d: Path, o: IndexOptions, **kwargs: Any) -> ExactRerankIndex:
    """The approximate index with exact re-ranking from the catalog (for its own tests)."""
    return ExactRerankIndex(_ivf(d, o), o.lookup, **kwargs)


def milvus_collection(d: Path) -> str:
    """The collection of a test folder on the session's Milvus server."""
    return "t_" + hashlib.sha1(str(d).encode()).hexdigest()[:24]


def _milvus(d: Path, o: IndexOptions, index: str = "FLAT") -> Any:
    from facesearch.index.milvus import MilvusIndex

    from ..engines import milvus as engine

    url = engine.server().collection(milvus_collection(d)[2:])
    return MilvusIndex(f"{url}?index={index}&nlist=128&nprobe=16", lookup=o.lookup)


def _milvus_stored(d: Path) -> bytes:
    from ..engines import milvus as engine

    return engine.stored(engine.server(), milvus_collection(d))


INDEXES: dict[str, IndexAdapter] = {
    "flat": IndexAdapter(lambda d, o: FlatFileIndex(d), True, 1.0, True, True),
    "faiss-ivf": IndexAdapter(_ivf, False, 0.9, True, False),
    "faiss-ivf+rerank": IndexAdapter(
        lambda d, o: rerank_over_ivf(d, o, exact_filter_max=500), True, 0.98, True, False
    ),
    # Encrypted homes: nothing on disk, rebuilt from the catalog on every open.
    "memory": IndexAdapter(lambda d, o: MemoryIndex(), True, 1.0, False, True),
    # A Milvus server (tests/engines/milvus.py). FLAT: exact search, Milvus's own scores.
    # Its segment files are written when Milvus flushes, not on add: the check that a
    # removed vector is still on disk before compaction does not apply (erases_at_once).
    "milvus": IndexAdapter(
        _milvus,
        True,
        1.0,
        True,
        True,
        marks=(pytest.mark.milvus,),
        stored=_milvus_stored,
        erase_delay=60.0,
    ),
}


# -- audit log ----------------------------------------------------------------------------
AuditRow = tuple[Any, ...]  # seq, at, actor, action, purpose, case_ref, details, prev, hash


@dataclass(frozen=True)
class AuditAdapter:
    """``open(folder, anchor, key, keyed_from, clock)``; ``read`` and ``write`` are an
    attacker's access to the log's storage alone: every row in storage order, and a
    replacement of every row (seq, at, actor, action, purpose, case_ref, details, prev_hash,
    hash)."""

    open: Callable[..., AuditLog]
    read: Callable[[Path], list[AuditRow]]
    write: Callable[[Path, list[AuditRow]], None]
    marks: Marks = ()


def _sqlite_audit(
    d: Path,
    anchor: AnchorStore,
    key: bytes | None = None,
    keyed_from: int | None = None,
    clock: Callable[[], Any] | None = None,
) -> AuditLog:
    extra = {} if clock is None else {"clock": clock}
    return AuditLog(SqliteAuditStore(d / "audit.sqlite"), anchor, key, keyed_from, **extra)


def _sqlite_audit_read(d: Path) -> list[AuditRow]:
    import sqlite3

    with sqlite3.connect(d / "audit.sqlite") as db:
        rows = list(db.execute("SELECT * FROM audit ORDER BY rowid"))
    db.close()
    return rows


def _sqlite_audit_write(d: Path, rows: list[AuditRow]) -> None:
    import sqlite3

    db = sqlite3.connect(d / "audit.sqlite", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    db.execute("DELETE FROM audit")
    db.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    db.close()


def _postgres_audit(
    d: Path,
    anchor: AnchorStore,
    key: bytes | None = None,
    keyed_from: int | None = None,
    clock: Callable[[], Any] | None = None,
) -> AuditLog:
    extra = {} if clock is None else {"clock": clock}
    store = PostgresAuditStore(pg_database(d))
    return AuditLog(store, anchor, key, keyed_from, **extra)


AUDIT_COLUMNS = "seq, at, actor, action, purpose, case_ref, details, prev_hash, hash"


def _postgres_audit_read(d: Path) -> list[AuditRow]:
    import psycopg

    with psycopg.connect(pg_database(d)) as db:
        return list(db.execute(f"SELECT {AUDIT_COLUMNS} FROM audit ORDER BY pos"))


def _postgres_audit_write(d: Path, rows: list[AuditRow]) -> None:
    import psycopg

    with psycopg.connect(pg_database(d)) as db, db.transaction():
        db.execute("DELETE FROM audit")
        db.cursor().executemany(
            f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


AUDIT_LOGS: dict[str, AuditAdapter] = {
    "sqlite": AuditAdapter(_sqlite_audit, _sqlite_audit_read, _sqlite_audit_write),
    "postgres": AuditAdapter(
        _postgres_audit, _postgres_audit_read, _postgres_audit_write, (pytest.mark.postgres,)
    ),
}


# -- suppression list ---------------------------------------------------------------------
@dataclass(frozen=True)
class SuppressionAdapter:
    open: Callable[[Path], SuppressionList]
    stored: Callable[[Path], bytes]
    sealed: bool
    marks: Marks = ()


SUPPRESSION_LISTS: dict[str, SuppressionAdapter] = {
    "sqlite": SuppressionAdapter(
        lambda d: SuppressionList(
            SqliteSuppressionStore(d / "suppression.sqlite", TemplateCodec(Sealer(None)))
        ),
        files_bytes,
        False,
    ),
    "sqlite-sealed": SuppressionAdapter(
        lambda d: SuppressionList(
            SqliteSuppressionStore(d / "suppression.sqlite", TemplateCodec(Sealer(SEALER_KEY)))
        ),
        files_bytes,
        True,
    ),
    "postgres": SuppressionAdapter(
        lambda d: SuppressionList(
            PostgresSuppressionStore(pg.cluster(d).url(), TemplateCodec(Sealer(None)))
        ),
        pg.stored,
        False,
        (pytest.mark.postgres,),
    ),
    "postgres-sealed": SuppressionAdapter(
        lambda d: SuppressionList(
            PostgresSuppressionStore(pg.cluster(d).url(), TemplateCodec(Sealer(SEALER_KEY)))
        ),
        pg.stored,
        True,
        (pytest.mark.postgres,),
    ),
}


# -- accounts -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AccountsAdapter:
    open: Callable[[Path, Callable[[], float]], AccountStore]
    stored: Callable[[Path], bytes]
    marks: Marks = ()


ACCOUNT_STORES: dict[str, AccountsAdapter] = {
    "sqlite": AccountsAdapter(
        lambda d, clock: SqliteAccountStore(d / "accounts.sqlite", clock), files_bytes
    ),
    "postgres": AccountsAdapter(
        lambda d, clock: PostgresAccountStore(pg_database(d), clock),
        pg_database_stored,
        (pytest.mark.postgres,),
    ),
}


# -- locks shared by the processes of a catalog ---------------------------------------------
@dataclass(frozen=True)
class LocksAdapter:
    open: Callable[[Path], Locks]
    marks: Marks = ()


LOCKS: dict[str, LocksAdapter] = {
    "sqlite": LocksAdapter(FileLocks),
    "postgres": LocksAdapter(lambda d: AdvisoryLocks(pg_database(d)), (pytest.mark.postgres,)),
}


@dataclass
class Clock:
    """A clock the test moves (session expiry); starts at the real time."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now
