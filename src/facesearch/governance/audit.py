"""The append-only, hash-chained audit log.

Every entry carries the hash of the one before it, so editing, deleting or reordering
entries breaks the chain at a place ``verify`` names. Cutting entries off the end leaves
a valid chain, so the latest sequence number and hash are also kept outside the log (in
the catalog) and compared; an operator who also records ``facesearch audit head``
elsewhere can detect a rewrite of both.

The log never holds images or templates: only who, when, what, why, counts and hashes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facesearch.sqlitedb import Writes, open_connection

GENESIS = "0" * 64

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


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing that happened. Written by the engine, never by a route or a command."""

    action: str  # search, ingest, erasure, retention, dsar, suppression, source.add, key.create ...
    actor: str
    purpose: str | None = None
    case_ref: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    purpose: str | None
    case_ref: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def entry_hash(
    seq: int,
    at: str,
    actor: str,
    action: str,
    purpose: str | None,
    case_ref: str | None,
    details: str,
    prev_hash: str,
) -> str:
    canonical = json.dumps(
        [seq, at, actor, action, purpose, case_ref, details, prev_hash],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    problem: str | None = None
    seq: int | None = None  # where the first problem is


class AuditLog:
    """The log, in its own SQLite file. ``head_store`` keeps (seq, hash) outside it."""

    def __init__(
        self,
        path: Path,
        head_get: Callable[[], tuple[int, str] | None],
        head_set: Callable[[int, str], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = open_connection(path, "audit log", SCHEMA)
        self.writes = Writes(self.db)
        self._head_get = head_get
        self._head_set = head_set
        self._clock = clock

    def append(self, event: AuditEvent) -> AuditEntry:
        # The head is set under the same lock, so two appends cannot leave it behind.
        with self.writes.alone():
            with self.writes.transaction():
                last = self.db.execute(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
                at = self._clock().astimezone(UTC).isoformat(timespec="microseconds")
                details = json.dumps(event.details, sort_keys=True, default=str)
                head = (seq, at, event.actor, event.action, event.purpose, event.case_ref)
                digest = entry_hash(*head, details, prev)
                self.db.execute(
                    "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*head, details, prev, digest),
                )
            self._head_set(seq, digest)
        return AuditEntry(*head, event.details, prev, digest)

    def entries(
        self,
        case_ref: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditEntry]:
        """Entries in order, filtered; ``after`` and ``limit`` page through them by seq."""
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
            yield AuditEntry(
                row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8]
            )

    def head(self) -> tuple[int, str] | None:
        row = self.db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def verify(self) -> Verification:
        """Walk the chain in storage order; name the first entry that does not hold."""
        prev, expected_seq, count = GENESIS, 1, 0
        for row in self.db.execute("SELECT * FROM audit ORDER BY rowid"):
            seq, at, actor, action, purpose, case_ref, details, prev_hash, digest = row
            count += 1
            if seq != expected_seq:
                kind = "missing or reordered" if seq > expected_seq else "reordered or duplicated"
                return Verification(False, count, f"entry {expected_seq} {kind}: found {seq}", seq)
            if prev_hash != prev:
                return Verification(
                    False, count, f"entry {seq} does not follow entry {seq - 1} (chain broken)", seq
                )
            if entry_hash(seq, at, actor, action, purpose, case_ref, details, prev_hash) != digest:
                return Verification(False, count, f"entry {seq} was edited", seq)
            prev, expected_seq = digest, expected_seq + 1
        anchor = self._head_get()
        if anchor is not None:
            anchor_seq, anchor_hash = anchor
            if anchor_seq > count:
                return Verification(
                    False,
                    count,
                    f"the log ends at entry {count} but entry {anchor_seq} was written "
                    "(entries cut off the end)",
                    count + 1,
                )
            if anchor_seq == count and anchor_hash != prev:
                return Verification(False, count, f"entry {count} is not the entry written", count)
        return Verification(True, count)

    def close(self) -> None:
        self.db.close()
