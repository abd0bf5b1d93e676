"""SqliteSuppressionStore: the suppression list's templates in their own SQLite file
(``suppression.sqlite``), apart from the gallery; deleted rows are overwritten."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facesearch.catalog.ports import Templates
from facesearch.errors import NotFound
from facesearch.security.templates import TemplateCodec
from facesearch.sqlitedb import Writes, open_connection

SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
    id INTEGER PRIMARY KEY,
    consent_ref TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL,
    template BLOB NOT NULL,
    created_at TEXT NOT NULL
);
"""


class SqliteSuppressionStore:
    def __init__(self, path: Path, codec: TemplateCodec) -> None:
        self.db = open_connection(path, "suppression list", SCHEMA, ("secure_delete=ON",))
        self.writes = Writes(self.db)
        self.codec = codec
        # One model's templates, with the version of the file they were read at: another
        # process (the CLI beside a running server) may add or remove a suppression.
        self._cache: tuple[str, tuple[int, int], Templates] | None = None

    def add(
        self, template: npt.NDArray[np.float32], model: str, consent_ref: str, note: str
    ) -> int:
        with self.writes.alone() as db:
            cur = db.execute(
                "INSERT INTO suppressions (consent_ref, note, model, template, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    consent_ref,
                    note,
                    model,
                    self.codec.encode(template),
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )
        self._cache = None
        return int(cur.lastrowid or 0)

    def remove(self, suppression_id: int) -> None:
        with self.writes.alone() as db:
            cur = db.execute("DELETE FROM suppressions WHERE id = ?", (suppression_id,))
            if cur.rowcount == 0:
                raise NotFound(f"no suppression with id {suppression_id}")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._cache = None

    def list(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, consent_ref, note, model, created_at FROM suppressions ORDER BY id"
        )
        return [
            {"id": r[0], "consent_ref": r[1], "note": r[2], "model": r[3], "created_at": r[4]}
            for r in rows
        ]

    def templates(self, model: str) -> Templates:
        version = self.writes.version
        if self._cache is not None and self._cache[:2] == (model, version):
            return self._cache[2]
        rows = self.db.execute(
            "SELECT id, template FROM suppressions WHERE model = ? ORDER BY id", (model,)
        ).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = self.codec.decode_many(r[1] for r in rows)
        self._cache = (model, version, (ids, vecs))
        return ids, vecs

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0])

    def close(self) -> None:
        self.db.close()
