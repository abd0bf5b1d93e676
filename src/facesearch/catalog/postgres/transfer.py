"""Copy an embedded home's SQLite files (the catalog, the audit log, the suppression list,
the accounts) into a PostgreSQL database whose tables are made and empty
(``facesearch migrate``).

Rows are copied as they are: the same ids (so the index built afterwards holds the same
face ids, and audit entries that name an image still name it), the audit entries with
their hashes (the chain verifies as it did, and its anchor in the catalog's ``meta``
comes along), embeddings and suppression templates as stored (sealed ones stay sealed
with the same key). Everything is written in one transaction: a copy that fails half way
leaves the database as empty as it found it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path

import psycopg

from facesearch.catalog.postgres.connections import Pool, first_line, redacted
from facesearch.errors import ConfigError

# Kept by the target's own triggers as the faces arrive; the schema version is the
# target's own (checked equal before copying).
DERIVED = {"face_totals"}
OWN_META = {"schema_version"}
BATCH = 2000  # rows read from SQLite at a time: a large table is never held in memory

Progress = Callable[[int, int], None]


def _sqlite_tables(db: sqlite3.Connection) -> dict[str, dict[str, str | None]]:
    """table -> column -> its default (an SQL expression, or None)."""
    names = [
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {n: {c[1]: c[4] for c in db.execute(f'PRAGMA table_info("{n}")')} for n in names}


def _pg_tables(db: psycopg.Connection[tuple[object, ...]]) -> dict[str, dict[str, str]]:
    """table -> column -> data type, for the tables of the connection's schema."""
    out: dict[str, dict[str, str]] = {}
    for table, column, kind in db.execute(
        """SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"""
    ):
        out.setdefault(str(table), {})[str(column)] = str(kind)
    return out


def _order(db: psycopg.Connection[tuple[object, ...]], tables: Sequence[str]) -> list[str]:
    """``tables`` with every table after those its foreign keys point to."""
    needs: dict[str, set[str]] = {t: set() for t in tables}
    for child, parent in db.execute(
        """SELECT c.conrelid::regclass::text, c.confrelid::regclass::text
           FROM pg_constraint c WHERE c.contype = 'f'"""
    ):
        if child in needs and parent in needs and child != parent:
            needs[str(child)].add(str(parent))
    out: list[str] = []
    while needs:
        ready = sorted(t for t, deps in needs.items() if not deps - set(out))
        if not ready:  # a cycle: not in this schema
            raise ConfigError(f"cannot order the tables {sorted(needs)} by their keys")
        for t in ready:
            out.append(t)
            del needs[t]
    return out


def held(url: str) -> dict[str, int]:
    """The rows the database at ``url`` holds, by table (its own bookkeeping left out)."""
    pool = Pool(url, "migration target", 1)
    try:
        with pool.connection() as db:
            counts: dict[str, int] = {}
            for table in _pg_tables(db):
                if table in DERIVED:
                    continue
                where = " WHERE key <> 'schema_version'" if table == "meta" else ""
                row = db.execute(f'SELECT count(*) FROM "{table}"{where}').fetchone()
                counts[table] = int(row[0]) if row else 0
            return counts
    finally:
        pool.close()


def copy_files(files: Sequence[Path], url: str, progress: Progress | None = None) -> dict[str, int]:
    """Copy every table of the SQLite ``files`` into the same-named tables at ``url``
    (made and empty), in one transaction. Returns the rows copied, by table. Refuses a
    table or column that holds data the target has no place for, and a target at another
    schema version."""
    sources: list[tuple[Path, str, list[str]]] = []
    totals: dict[tuple[Path, str], int] = {}
    pool = Pool(url, "migration target", 1)
    try:
        with pool.connection() as db:
            target = _pg_tables(db)
            for path in files:
                with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as src:
                    for table, columns in _sqlite_tables(src).items():
                        count = src.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                        if table in DERIVED:
                            continue
                        if table not in target:
                            if count:
                                raise ConfigError(
                                    f"{path.name}: table {table} holds {count} rows and the "
                                    f"PostgreSQL catalog of this release has no such table: "
                                    f"nothing was copied"
                                )
                            continue
                        lost = [c for c in columns if c not in target[table]]
                        for column in lost:
                            # Only values a catalog without the column would not mean
                            # anyway: other than NULL and the column's default.
                            default = columns[column] or "NULL"
                            n = src.execute(
                                f'SELECT count(*) FROM "{table}" WHERE "{column}" IS NOT NULL '
                                f'AND "{column}" IS NOT ({default})'
                            ).fetchone()[0]
                            if n:
                                raise ConfigError(
                                    f"{path.name}: column {table}.{column} holds {n} values "
                                    f"and the PostgreSQL catalog of this release has no "
                                    f"such column: nothing was copied"
                                )
                        kept = [c for c in columns if c in target[table]]
                        sources.append((path, table, kept))
                        totals[(path, table)] = count
                    if path.name == "catalog.sqlite":
                        _same_version(src, db)
            order = {t: i for i, t in enumerate(_order(db, [t for _, t, _ in sources]))}
            sources.sort(key=lambda s: order[s[1]])
            total = sum(totals.values())
            done = 0
            copied: dict[str, int] = {}
            try:
                with db.transaction():
                    for path, table, kept in sources:
                        kinds = [target[table][c] for c in kept]
                        where = " WHERE key NOT IN ('schema_version')" if table == "meta" else ""
                        key = "seq" if "seq" in kept else "rowid"
                        names = ", ".join(f'"{c}"' for c in kept)
                        with (
                            closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as src,
                            db.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy,
                        ):
                            rows = src.execute(
                                f'SELECT {names} FROM "{table}"{where} ORDER BY {key}'
                            )
                            while batch := rows.fetchmany(BATCH):
                                for row in batch:
                                    copy.write_row(
                                        [
                                            bool(v) if k == "boolean" and v is not None else v
                                            for v, k in zip(row, kinds, strict=True)
                                        ]
                                    )
                                done += len(batch)
                                copied[table] = copied.get(table, 0) + len(batch)
                                if progress:
                                    progress(done, total)
                        # New rows are numbered after the copied ones.
                        if target[table].get("id") == "bigint":
                            db.execute(
                                f"""SELECT setval(pg_get_serial_sequence('"{table}"', 'id'),
                                       (SELECT max(id) FROM "{table}"))
                                    WHERE EXISTS (SELECT 1 FROM "{table}")"""
                            )
            except (
                psycopg.DataError,
                psycopg.IntegrityError,
                psycopg.ProgrammingError,
                sqlite3.Error,
            ) as exc:
                # Rolled back: the target is as empty as it was.
                raise ConfigError(
                    f"the copy into {redacted(url)} failed and was rolled back: {first_line(exc)}"
                ) from exc
            if progress:
                progress(total, total)
            return copied
    finally:
        pool.close()


def _same_version(src: sqlite3.Connection, db: psycopg.Connection[tuple[object, ...]]) -> None:
    mine = src.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    theirs = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if mine is None or theirs is None or mine[0] != theirs[0]:
        raise ConfigError(
            f"the home's catalog is at schema version {mine[0] if mine else '?'} and the "
            f"target at {theirs[0] if theirs else '?'}: run facesearch db upgrade on the "
            f"home first (this release makes both at the same version)"
        )
