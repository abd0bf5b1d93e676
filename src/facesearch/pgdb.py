"""One PostgreSQL connection shared by the threads of a process, for one store.

The PostgreSQL stores (audit log, suppression list, accounts) each keep one connection
in autocommit mode, as the SQLite stores do (``sqlitedb.py``), used from the API's worker
threads as well as the caller's. A transaction on a shared connection belongs to every
thread that uses it, so every use goes through :class:`Database`, one at a time.

A server that is down or goes away is a ``BackendUnavailable`` (the CLI prints one line,
the API answers 503): the statement that failed is rolled back by the server, and the
next use opens a new connection.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from facesearch.errors import BackendUnavailable

CONNECT_TIMEOUT_S = 10


def redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name`` (the same in every process)."""
    digest = hashlib.sha256(f"facesearch:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def connect(url: str, what: str) -> psycopg.Connection[Any]:
    """A new autocommit connection to ``url``; ``what`` names the store in errors."""
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="facesearch",
        )
    except psycopg.Error as exc:
        raise BackendUnavailable(
            f"cannot reach PostgreSQL for the {what} at {redacted(url)}: {first_line(exc)}"
        ) from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Database:
    """One store's connection: opened (and the schema made) at once, reopened after the
    server went away, used by one thread at a time."""

    def __init__(self, url: str, what: str, schema: str) -> None:
        self.url = url
        self.what = what
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        with self.transaction() as cur:
            # Two processes creating the same tables at once would collide in the system
            # catalogs: one at a time.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("schema"),))
            cur.execute(schema)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url, self.what)
        return self._conn

    @contextmanager
    def failures(self) -> Iterator[None]:
        """psycopg's errors of a server gone away as BackendUnavailable."""
        try:
            yield
        except psycopg.OperationalError as exc:
            if self._conn is not None and self._conn.broken:
                self._conn.close()
            raise BackendUnavailable(
                f"PostgreSQL ({self.what} at {redacted(self.url)}) failed: {first_line(exc)}"
            ) from exc

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor in one transaction, committed at the end of the block, rolled back
        if it raises."""
        with self._lock, self.failures():
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cur:
                yield cur

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement on its own; returns the rows it touched."""
        with self._lock, self.failures():
            cur = self._connection().execute(sql, args)
            return cur.rowcount

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row one query returns."""
        with self._lock, self.failures():
            return self._connection().execute(sql, args).fetchall()

    def row(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        found = self.rows(sql, args)
        return found[0] if found else None

    def forget_wal(self) -> bool:
        """Push what was just deleted out of the server's write-ahead log: end the current
        WAL segment and checkpoint, after which the server no longer needs the segments
        that held the deleted rows (it removes them, or with ``wal_recycle`` on, renames
        them for reuse, their old bytes kept until overwritten). Needs the ``pg_checkpoint``
        role and ``EXECUTE`` on ``pg_switch_wal`` (or a superuser); returns False without
        them. Copies already archived, streamed to replicas or backed up are out of reach
        (docs/scaling.md)."""
        try:
            self.execute("SELECT pg_switch_wal()")
            self.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
