"""The audit log's anchor kept in the SQLite catalog's meta table (its latest entry)."""

from __future__ import annotations

from facesearch.catalog.sqlite import SqliteCatalog


class SqliteCatalogAnchor:
    """The audit log's anchor: the latest entry, kept in the catalog's meta table."""

    KEY = "audit_head"

    def __init__(self, catalog: SqliteCatalog) -> None:
        self.catalog = catalog

    def get(self) -> str | None:
        return self.catalog.meta(self.KEY)

    def set(self, value: str) -> None:
        self.catalog.set_meta(self.KEY, value)

    def replace(self, old: str, new: str) -> None:
        with self.catalog.writes.alone() as db:
            db.execute(
                "UPDATE meta SET value = ? WHERE key = ? AND value = ?", (new, self.KEY, old)
            )
