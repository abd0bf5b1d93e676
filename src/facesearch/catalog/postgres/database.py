"""The tables kept beside the catalog in its PostgreSQL database (the audit log, the
suppression list, the accounts): each store's connections (``connections.Pool``, so that
a server that is down or goes away is a ``BackendUnavailable``), its schema made once,
and the few statements they all use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from facesearch.catalog.postgres.catalog import lock_key
from facesearch.catalog.postgres.connections import Connection, Pool, first_line
from facesearch.errors import ConfigError

POOL_SIZE = 4  # a store's connections in one process (its threads beyond that wait)


class Database:
    """One store's tables: ``schema`` makes them when one of ``tables`` is missing (one
    process at a time). Where they exist, the store needs no right to create anything:
    a deployment may make them as another role and grant facesearch's role only what
    it uses (docs/scaling.md)."""

    def __init__(self, url: str, what: str, schema: str, tables: Sequence[str]) -> None:
        self.url = url
        self.pool = Pool(url, what, POOL_SIZE)
        with self.transaction() as cur:
            # Two processes creating the same tables at once would collide in the system
            # catalogs.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("stores schema"),))
            found = cur.execute(
                "SELECT count(to_regclass(t)) FROM unnest(%s::text[]) AS t", (list(tables),)
            ).fetchone()
            if found is None or found[0] != len(tables):
                try:
                    cur.execute(schema)
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise ConfigError(
                        f"the database role cannot make the {what}'s tables "
                        f"({', '.join(tables)}): make them as the database's owner, or "
                        f"grant the role CREATE ({first_line(exc)})"
                    ) from exc

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[tuple[Any, ...]]]:
        """A cursor in one transaction, committed at the end of the block, rolled back
        if it raises."""
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement on its own; returns the rows it touched."""
        with self.pool.connection() as conn:
            return conn.execute(sql, args).rowcount

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(sql, args).fetchall()

    def row(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        found = self.rows(sql, args)
        return found[0] if found else None

    def forget_wal(self) -> bool:
        """Push what was just deleted out of the server's write-ahead log: end the WAL
        segment and checkpoint (twice: the segment before the one in use may still be
        needed after the first), after which the server no longer needs the segments
        that held the deleted rows. It removes them, or with ``wal_recycle`` on (the
        default) renames them for reuse, their old bytes kept until overwritten. Needs
        the ``pg_checkpoint`` role and ``EXECUTE`` on ``pg_switch_wal`` (or a superuser);
        returns False without them. Copies already archived, streamed to replicas or in
        backups are out of reach (docs/scaling.md)."""
        with self.pool.connection() as conn:
            for _ in range(2):
                try:
                    conn.execute("SELECT pg_switch_wal()")
                    conn.execute("CHECKPOINT")
                except psycopg.errors.InsufficientPrivilege:
                    return False
        return True

    def close(self) -> None:
        self.pool.close()
