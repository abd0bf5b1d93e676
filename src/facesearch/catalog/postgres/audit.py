"""PostgresAuditStore: the audit log's rows in the catalog's PostgreSQL database, one
chain for every process that shares it (API servers, command-line runs, ingest workers).

Appends are serialised across processes by an advisory lock taken in the append's
transaction (readers do not wait), so the head that the next entry is chained onto is
the last committed row, whoever wrote it. It needs no privilege on the table beyond
``SELECT`` and ``INSERT``: a deployment can make the table append-only for facesearch's
database role (docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from facesearch.catalog.ports import AuditRow
from facesearch.catalog.postgres.catalog import lock_key
from facesearch.catalog.postgres.database import Database

# ``pos`` is the order rows were stored in (``stored``: verify walks it, so that a row
# renumbered or moved by someone who can write the table shows).
SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    pos BIGINT GENERATED ALWAYS AS IDENTITY,
    seq BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    purpose TEXT,
    case_ref TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_case ON audit(case_ref);
CREATE INDEX IF NOT EXISTS audit_action_at ON audit(action, at);
CREATE INDEX IF NOT EXISTS audit_pos ON audit(pos);
"""
COLUMNS = "seq, at, actor, action, purpose, case_ref, details, prev_hash, hash"
# Rows are read in pages, so that a long log is neither held in memory nor holds the
# connection while the caller works through it.
PAGE = 1000
APPEND_LOCK = lock_key("audit append")


class PostgresAuditStore:
    def __init__(self, url: str) -> None:
        self.db = Database(url, "audit log", SCHEMA, ("audit",))

    def append(self, make: Callable[[tuple[int, str] | None], AuditRow]) -> AuditRow:
        with self.db.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
            cur.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            last = cur.fetchone()
            row = make(None if last is None else (int(last[0]), str(last[1])))
            cur.execute(
                f"INSERT INTO audit ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    row.seq,
                    row.at,
                    row.actor,
                    row.action,
                    row.purpose,
                    row.case_ref,
                    row.details,
                    row.prev_hash,
                    row.hash,
                ),
            )
        return row

    def rows(
        self,
        *,
        case_ref: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditRow]:
        where: list[str] = []
        args: list[Any] = []
        for column, op, value in (
            ("case_ref", "=", case_ref),
            ("action", "=", action),
            ("at", ">=", since),
            ("at", "<", until),
        ):
            if value is not None:
                where.append(f"{column} {op} %s")
                args.append(value)
        left = limit
        last = after
        while left is None or left > 0:
            page = PAGE if left is None else min(PAGE, left)
            conditions = [*where, "seq > %s"] if last is not None else where
            sql = f"SELECT {COLUMNS} FROM audit"
            sql += " WHERE " + " AND ".join(conditions) if conditions else ""
            sql += f" ORDER BY seq LIMIT {page}"
            found = self.db.rows(sql, [*args, last] if last is not None else args)
            for row in found:
                yield AuditRow(*row)
            if len(found) < page:
                return
            last = int(found[-1][0])
            left = None if left is None else left - len(found)

    def stored(self) -> Iterator[AuditRow]:
        last = -(2**63)
        while True:
            found = self.db.rows(
                f"SELECT pos, {COLUMNS} FROM audit WHERE pos > %s ORDER BY pos LIMIT {PAGE}",
                (last,),
            )
            for row in found:
                yield AuditRow(*row[1:])
            if len(found) < PAGE:
                return
            last = int(found[-1][0])

    def head(self) -> tuple[int, str] | None:
        row = self.db.row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return None if row is None else (int(row[0]), str(row[1]))

    def close(self) -> None:
        self.db.close()
