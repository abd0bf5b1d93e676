"""PostgresSuppressionStore: the suppression list's templates in the catalog's PostgreSQL
database, in a table of their own, apart from the gallery.

Templates are kept as the bytes of the store's ``TemplateCodec`` (sealed when the home
has an encryption key), as in ``sqlite_suppression.py``. A removed row is deleted and
the table rewritten (``VACUUM FULL``: the suppression list is small), so that no copy is
left in the table's files, and the write-ahead log moved past it where the database role
may (``Database.forget_wal``); what PostgreSQL keeps out of reach (archived WAL, replicas,
backups) is in docs/scaling.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from facesearch.catalog.ports import Templates
from facesearch.catalog.postgres.database import Database
from facesearch.errors import NotFound
from facesearch.security.templates import TemplateCodec

SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consent_ref TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL,
    template BYTEA NOT NULL,
    created_at TEXT NOT NULL
);
"""


class PostgresSuppressionStore:
    def __init__(self, url: str, codec: TemplateCodec) -> None:
        self.db = Database(url, "suppression list", SCHEMA, ("suppressions",))
        self.codec = codec
        # One model's templates, with the version of the table they were read at: other
        # processes (the CLI beside a running server, other API servers) add and remove.
        self._cache: tuple[str, tuple[int, int], Templates] | None = None

    def add(
        self, template: npt.NDArray[np.float32], model: str, consent_ref: str, note: str
    ) -> int:
        row = self.db.row(
            "INSERT INTO suppressions (consent_ref, note, model, template, created_at) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (
                consent_ref,
                note,
                model,
                self.codec.encode(template),
                datetime.now(UTC).isoformat(timespec="seconds"),
            ),
        )
        assert row is not None
        return int(row[0])

    def remove(self, suppression_id: int) -> None:
        if self.db.execute("DELETE FROM suppressions WHERE id = %s", (suppression_id,)) == 0:
            raise NotFound(f"no suppression with id {suppression_id}")
        # A deleted row stays in the table's pages until they are rewritten, and in the
        # write-ahead log until its segment is done with.
        self.db.execute("VACUUM FULL suppressions")
        self.db.forget_wal()

    def list(self) -> list[dict[str, Any]]:
        rows = self.db.rows(
            "SELECT id, consent_ref, note, model, created_at FROM suppressions ORDER BY id"
        )
        return [
            {"id": r[0], "consent_ref": r[1], "note": r[2], "model": r[3], "created_at": r[4]}
            for r in rows
        ]

    def version(self) -> tuple[int, int]:
        """Changes whenever a suppression was added or removed, by anyone: ids are never
        reused, so an add raises the highest id unless it was removed again (and then the
        set is what it was), and a remove alone lowers the count."""
        row = self.db.row("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM suppressions")
        assert row is not None
        return int(row[0]), int(row[1])

    def templates(self, model: str) -> Templates:
        version = self.version()
        if self._cache is not None and self._cache[:2] == (model, version):
            return self._cache[2]
        rows = self.db.rows(
            "SELECT id, template FROM suppressions WHERE model = %s ORDER BY id", (model,)
        )
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = self.codec.decode_many(bytes(r[1]) for r in rows)
        self._cache = (model, version, (ids, vecs))
        return ids, vecs

    def count(self) -> int:
        row = self.db.row("SELECT COUNT(*) FROM suppressions")
        assert row is not None
        return int(row[0])

    def close(self) -> None:
        self.db.close()
