"""One SQLite connection shared by the threads of a process.

The catalog, the audit log and the suppression list each keep one connection in
autocommit mode, used from the API's worker threads as well as from the caller's. A
transaction on a shared connection belongs to every thread that uses it: without a lock,
one thread's ``COMMIT`` can end another thread's transaction half-way, or a write from
one thread can be rolled back with another's. So every write goes through
:class:`Writes`, one at a time; reads need no lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from facesearch.errors import BackendUnavailable


def open_connection(
    path: Path, what: str, schema: str, pragmas: Sequence[str] = ()
) -> sqlite3.Connection:
    """Open (creating) ``path`` in WAL mode with ``schema``; ``what`` names it in errors."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=10000")
        for pragma in pragmas:
            db.execute(f"PRAGMA {pragma}")
        db.executescript(schema)
    except sqlite3.DatabaseError as exc:
        raise BackendUnavailable(f"cannot open {what} {path}: {exc}") from exc
    return db


class Writes:
    """Serialises the writes made on one shared connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._lock = threading.RLock()
        self._generation = 0

    @property
    def version(self) -> tuple[int, int]:
        """Changes when anything was written: by this connection (counted here) or by
        another connection or process (SQLite's ``data_version``). For caches."""
        other = int(self.db.execute("PRAGMA data_version").fetchone()[0])
        return other, self._generation

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back if the block raises."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
            self._generation += 1

    @contextmanager
    def alone(self) -> Iterator[sqlite3.Connection]:
        """The connection with no transaction of another thread open on it (for single
        statements in autocommit, ``VACUUM`` and checkpoints)."""
        with self._lock:
            try:
                yield self.db
            finally:
                self._generation += 1
