"""SqliteAuditStore: the audit log's rows in their own SQLite file (``audit.sqlite``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from facesearch.catalog.ports import AuditRow
from facesearch.sqlitedb import Writes, open_connection

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
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
"""


class SqliteAuditStore:
    def __init__(self, path: Path) -> None:
        self.db = open_connection(path, "audit log", SCHEMA)
        self.writes = Writes(self.db)

    def append(self, make: Callable[[tuple[int, str] | None], AuditRow]) -> AuditRow:
        # BEGIN IMMEDIATE also serialises the writers of other processes.
        with self.writes.transaction() as db:
            row = make(self._head())
            db.execute(
                "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            ("seq", ">", after),
            ("case_ref", "=", case_ref),
            ("action", "=", action),
            ("at", ">=", since),
            ("at", "<", until),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(value)
        sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY seq" + (f" LIMIT {int(limit)}" if limit is not None else "")
        for row in self.db.execute(sql, args):
            yield AuditRow(*row)

    def stored(self) -> Iterator[AuditRow]:
        for row in self.db.execute("SELECT * FROM audit ORDER BY rowid"):
            yield AuditRow(*row)

    def head(self) -> tuple[int, str] | None:
        return self._head()

    def _head(self) -> tuple[int, str] | None:
        row = self.db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def close(self) -> None:
        self.db.close()
