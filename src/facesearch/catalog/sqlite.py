"""SqliteCatalog: the embedded default catalog, one SQLite file in WAL mode.

It keeps what it is given: expiry dates computed by governance.retention, templates
encoded by the TemplateCodec it is built with (sealed or plain: not its decision).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facesearch.catalog.ports import ExpiryRule, FileStamp, NewImage, Removal, UrlQuery
from facesearch.catalog.rows import SOURCE_COLUMNS, source_from, source_row
from facesearch.domain import BoundingBox, FaceRecord, ImageRecord, Person, Provenance, Source
from facesearch.errors import BackendUnavailable, ConfigError, InvalidInput, NotFound
from facesearch.security.templates import TemplateCodec
from facesearch.sqlitedb import Writes, open_connection

# MIGRATIONS[n] takes a catalog from schema version n + 1 to n + 2 (version 1 is SCHEMA as
# first released). An embedded catalog is upgraded when it is opened: one file, whose
# processes all run this release; a shared server's is not (catalog/postgres).
MIGRATIONS: list[str] = [
    # 2: a face is one row per image and index, whoever writes it (as on PostgreSQL).
    "CREATE UNIQUE INDEX IF NOT EXISTS faces_image_idx ON faces(image_id, idx);",
    # 3: the perceptual hash by which search groups copies of one photo (NULL: not computed).
    "ALTER TABLE images ADD COLUMN phash TEXT;",
    # 4: whether a source declares grouping its faces into persons (off by default).
    "ALTER TABLE sources ADD COLUMN group_people INTEGER NOT NULL DEFAULT 0;",
    # 5: a copy that is a frame of a video: the video's path and the frame's moment (s).
    "ALTER TABLE provenance ADD COLUMN video TEXT;"
    "ALTER TABLE provenance ADD COLUMN video_time REAL;",
]
SCHEMA_VERSION = 1 + len(MIGRATIONS)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    controller TEXT NOT NULL DEFAULT '',
    contact TEXT NOT NULL DEFAULT '',
    lawful_basis TEXT NOT NULL,
    special_category_condition TEXT NOT NULL,
    jurisdictions TEXT NOT NULL DEFAULT '[]',
    retention_days INTEGER NOT NULL CHECK (retention_days > 0),
    legal_hold INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    format TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    face_count INTEGER NOT NULL,
    skipped_faces TEXT NOT NULL DEFAULT '[]',
    ingested_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS provenance (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    source_id INTEGER NOT NULL REFERENCES sources(id),
    path TEXT NOT NULL,
    source_url TEXT,
    page_url TEXT,
    captured_at TEXT,
    file_size INTEGER,
    file_mtime_ns INTEGER,
    ingested_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    UNIQUE (source_id, path, image_id)
);
CREATE INDEX IF NOT EXISTS provenance_expiry ON provenance(expires_at);
CREATE INDEX IF NOT EXISTS provenance_image ON provenance(image_id);
CREATE INDEX IF NOT EXISTS provenance_source_path ON provenance(source_id, path);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    x1 INTEGER NOT NULL, y1 INTEGER NOT NULL, x2 INTEGER NOT NULL, y2 INTEGER NOT NULL,
    score REAL NOT NULL,
    landmarks TEXT NOT NULL,
    size INTEGER NOT NULL,
    sharpness REAL NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_image ON faces(image_id);
CREATE TABLE IF NOT EXISTS persons (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS person_faces (
    face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    confirmed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS person_faces_person ON person_faces(person_id);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id),
    path TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    UNIQUE (source_id, path)
);
-- Vectors of another model, made by `reindex --re-embed` and swapped in when every face
-- has one: a re-embedding stopped half way resumes, and search meanwhile reads the old ones.
CREATE TABLE IF NOT EXISTS restaged (
    face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    embedding BLOB NOT NULL
);
"""


# Face count and id sum kept by triggers, so the index check on every open reads one row
# instead of scanning every face (at 10M faces a scan reads gigabytes of embeddings).
COUNTERS = """
CREATE TABLE IF NOT EXISTS face_totals (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    count INTEGER NOT NULL,
    id_sum INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS face_totals_insert AFTER INSERT ON faces BEGIN
    UPDATE face_totals SET count = count + 1, id_sum = id_sum + NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS face_totals_delete AFTER DELETE ON faces BEGIN
    UPDATE face_totals SET count = count - 1, id_sum = id_sum - OLD.id;
END;
"""


IDS_CACHE_ENTRIES = 16  # source sets whose face ids are kept between searches
NEVER = "9999-12-31T00:00:00+00:00"  # the expiry of synthetic rows given none
Ids = npt.NDArray[np.int64]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SqliteCatalog:
    """Sources, images, provenance, faces and their embeddings in one SQLite file."""

    def __init__(self, path: Path, codec: TemplateCodec | None = None) -> None:
        self.path = path
        self.codec = codec or TemplateCodec()
        # Deleted rows are overwritten with zeros, so erased templates leave no copy.
        self.db = open_connection(
            path, "catalog", SCHEMA, ("synchronous=NORMAL", "foreign_keys=ON", "secure_delete=ON")
        )
        self.writes = Writes(self.db)
        self._ids_by_sources: dict[tuple[str, ...], tuple[tuple[int, int], Ids]] = {}
        try:
            self._init_counters()
            stored = self.db.execute("SELECT 1 FROM meta WHERE key = 'schema_version'")
            if stored.fetchone() is None or self.schema_version() != SCHEMA_VERSION:
                self.upgrade()
        except sqlite3.DatabaseError as exc:
            raise BackendUnavailable(f"cannot open catalog {path}: {exc}") from exc

    def schema_version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return 1 if row is None else int(row[0])  # homes made before versions were kept: 1

    def upgrade(self) -> tuple[int, int]:
        """Apply the migrations this catalog lacks, in one transaction; refuse a catalog
        made by a newer release. Returns (version before, version after)."""
        with self.writes.transaction() as db:
            fresh = db.execute("SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone()
            before = self.schema_version()
            if before > SCHEMA_VERSION:
                raise ConfigError(
                    f"the catalog {self.path} is at schema version {before}, made by a newer "
                    f"facesearch (this one knows up to {SCHEMA_VERSION}): upgrade facesearch"
                )
            for step in MIGRATIONS[before - 1 :]:
                for statement in step.split(";"):
                    if statement.strip():
                        db.execute(statement)
            if fresh is None or before < SCHEMA_VERSION:
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        return before, SCHEMA_VERSION

    def _init_counters(self) -> None:
        self.db.executescript(COUNTERS)
        with self.writes.transaction():
            if self.db.execute("SELECT 1 FROM face_totals").fetchone() is None:
                self.db.execute(
                    "INSERT INTO face_totals SELECT 1, COUNT(*), COALESCE(SUM(id), 0) FROM faces"
                )

    # -- meta --------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.writes.alone() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def setdefault_meta(self, key: str, value: str) -> str:
        with self.writes.alone() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
            (stored,) = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(stored)

    def replace_meta(self, key: str, old: str, new: str) -> bool:
        with self.writes.alone() as db:
            cur = db.execute(
                "UPDATE meta SET value = ? WHERE key = ? AND value = ?", (new, key, old)
            )
        return cur.rowcount > 0

    def model_key(self) -> str | None:
        return self.meta("model")

    def set_model_key(self, key: str) -> None:
        self.set_meta("model", key)

    # -- sources -----------------------------------------------------------------------
    def add_source(self, source: Source) -> Source:
        stamp = now()
        try:
            with self.writes.alone() as db:
                db.execute(
                    """INSERT INTO sources (name, description, controller, contact, lawful_basis,
                       special_category_condition, jurisdictions, retention_days, legal_hold,
                       group_people, created_at, updated_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (*source_row(source), stamp, stamp),
                )
        except sqlite3.IntegrityError:
            raise InvalidInput(f"source {source.name!r} already exists") from None
        return self._source(source.name)

    def update_source(self, source: Source, expiry: ExpiryRule | None = None) -> Source:
        """Replace a source's policy; with ``expiry``, rewrite its copies' expiry dates.

        The rule is registered as an SQL function for one UPDATE: the rows never leave
        SQLite as Python lists (at 10M copies, reading them out and writing them back by id
        costs more than the rule itself)."""
        with self.writes.transaction():
            self.db.execute(
                """UPDATE sources SET description = ?, controller = ?, contact = ?,
                   lawful_basis = ?, special_category_condition = ?, jurisdictions = ?,
                   retention_days = ?, legal_hold = ?, group_people = ?, updated_at = ?
                   WHERE name = ?""",
                (*source_row(source)[1:], now(), source.name),
            )
            if expiry is not None:
                self.db.create_function("facesearch_expiry", 2, expiry, deterministic=True)
                try:
                    self.db.execute(
                        """UPDATE provenance SET expires_at = facesearch_expiry(captured_at,
                           ingested_at) WHERE source_id = (SELECT id FROM sources
                           WHERE name = ?)""",
                        (source.name,),
                    )
                finally:
                    self.db.create_function("facesearch_expiry", 2, None)
        return self._source(source.name)

    def get_source(self, name: str, counts: bool = True) -> Source | None:
        row = self.db.execute(f"SELECT {SOURCE_COLUMNS} FROM sources WHERE name = ?", (name,))
        found = row.fetchone()
        if found is None:
            return None
        return source_from(found, self._source_counts(name) if counts else {})

    def _source(self, name: str) -> Source:
        source = self.get_source(name)
        if source is None:
            raise NotFound(f"no source named {name!r}")
        return source

    def _source_counts(self, name: str) -> dict[str, int]:
        images, faces = self.db.execute(
            """SELECT COUNT(DISTINCT p.image_id), COALESCE(SUM(i.face_count), 0)
               FROM provenance p JOIN sources s ON s.id = p.source_id
               JOIN images i ON i.id = p.image_id WHERE s.name = ?""",
            (name,),
        ).fetchone()
        return {"images": int(images), "faces": int(faces)}

    def list_sources(self, counts: bool = True) -> list[Source]:
        rows = self.db.execute(f"SELECT {SOURCE_COLUMNS} FROM sources ORDER BY name").fetchall()
        return [source_from(r, self._source_counts(r[0]) if counts else {}) for r in rows]

    def _source_id(self, name: str) -> int:
        """The id of a registered source; refuses an unregistered one."""
        row = self.db.execute("SELECT id FROM sources WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(
                f"source {name!r} is not registered: register it with its lawful basis and "
                "retention period first (facesearch sources add)"
            )
        return int(row[0])

    # -- ingest ------------------------------------------------------------------------
    def seen_file(self, source: str, path: str, stamp: FileStamp) -> bool:
        row = self.db.execute(
            """SELECT 1 FROM provenance p JOIN sources s ON s.id = p.source_id
               WHERE s.name = ? AND p.path = ? AND p.file_size = ? AND p.file_mtime_ns = ?""",
            (source, path, stamp.size, stamp.mtime_ns),
        ).fetchone()
        return row is not None

    def image_id_by_sha(self, sha256: str) -> int | None:
        row = self.db.execute("SELECT id FROM images WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else int(row[0])

    def add_image(
        self, image: NewImage, provenance: Provenance, stamp: FileStamp | None
    ) -> tuple[int, list[int], bool]:
        db = self.db
        with self.writes.transaction():
            existing = self.image_id_by_sha(image.sha256)
            if existing is not None:
                self._insert_provenance(existing, provenance, stamp)
                return existing, [], False
            cur = db.execute(
                """INSERT INTO images (sha256, width, height, format, bytes, face_count,
                   skipped_faces, ingested_at, phash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    image.sha256,
                    image.width,
                    image.height,
                    image.format,
                    image.bytes,
                    len(image.faces),
                    json.dumps(list(image.skipped_faces)),
                    now(),
                    image.phash,
                ),
            )
            image_id = int(cur.lastrowid or 0)
            face_ids = []
            for i, (face, vec) in enumerate(zip(image.faces, image.embeddings, strict=True)):
                cur = db.execute(
                    """INSERT INTO faces (image_id, idx, x1, y1, x2, y2, score, landmarks, size,
                       sharpness, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        image_id,
                        i,
                        face.box.x1,
                        face.box.y1,
                        face.box.x2,
                        face.box.y2,
                        face.score,
                        json.dumps([[round(x, 1), round(y, 1)] for x, y in face.landmarks]),
                        face.size,
                        face.sharpness,
                        self.codec.encode(vec),
                    ),
                )
                face_ids.append(int(cur.lastrowid or 0))
            self._insert_provenance(image_id, provenance, stamp)
        return image_id, face_ids, True

    def add_provenance(
        self, image_id: int, provenance: Provenance, stamp: FileStamp | None
    ) -> bool:
        with self.writes.transaction():
            added = self._insert_provenance(image_id, provenance, stamp)
        return added

    def _insert_provenance(
        self, image_id: int, provenance: Provenance, stamp: FileStamp | None
    ) -> bool:
        source_id = self._source_id(provenance.source)
        self.db.execute(
            "DELETE FROM failures WHERE source_id = ? AND path = ?", (source_id, provenance.path)
        )
        row = self.db.execute(
            "SELECT id FROM provenance WHERE image_id = ? AND source_id = ? AND path = ?",
            (image_id, source_id, provenance.path),
        ).fetchone()
        size, mtime = (stamp.size, stamp.mtime_ns) if stamp else (None, None)
        if row is not None:
            # Same copy seen again: refresh what a manifest may have added, keep the rest.
            self.db.execute(
                """UPDATE provenance SET source_url = COALESCE(?, source_url),
                   page_url = COALESCE(?, page_url), captured_at = COALESCE(?, captured_at),
                   file_size = ?, file_mtime_ns = ? WHERE id = ?""",
                (
                    provenance.source_url,
                    provenance.page_url,
                    provenance.captured_at,
                    size,
                    mtime,
                    row[0],
                ),
            )
            return False
        if provenance.ingested_at is None or provenance.expires_at is None:
            raise InvalidInput(
                "a new copy needs its ingest and expiry dates (governance.retention.stamp)"
            )
        self.db.execute(
            """INSERT INTO provenance (image_id, source_id, path, source_url, page_url, captured_at,
               file_size, file_mtime_ns, ingested_at, expires_at, video, video_time)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                image_id,
                source_id,
                provenance.path,
                provenance.source_url,
                provenance.page_url,
                provenance.captured_at,
                size,
                mtime,
                provenance.ingested_at,
                provenance.expires_at,
                provenance.video,
                provenance.video_time,
            ),
        )
        return True

    def bulk_add_embeddings(
        self,
        source: str,
        embeddings: npt.NDArray[np.float32],
        prefix: str = "synthetic",
        expires_at: str = NEVER,
    ) -> npt.NDArray[np.int64]:
        """Store one synthetic image with one face per embedding, in one transaction.

        For benchmarks and tests at scale (millions of rows in batches), where running
        the detector is not the point. Returns the new face ids in order. The copies
        expire at ``expires_at`` (by default never: no retention date is computed here).
        """
        import hashlib

        vecs = np.ascontiguousarray(embeddings, dtype=np.float32)
        source_id = self._source_id(source)
        at = now()
        expires = expires_at
        db = self.db
        with self.writes.transaction():
            first_image = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM images").fetchone()[0])
            first_face = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM faces").fetchone()[0])
            image_ids = range(first_image + 1, first_image + 1 + len(vecs))
            face_ids = np.arange(first_face + 1, first_face + 1 + len(vecs), dtype=np.int64)
            db.executemany(
                """INSERT INTO images (id, sha256, width, height, format, bytes, face_count,
                   ingested_at) VALUES (?, ?, 150, 150, 'synthetic', 0, 1, ?)""",
                (
                    (i, hashlib.sha256(v.tobytes()).hexdigest(), at)
                    for i, v in zip(image_ids, vecs, strict=True)
                ),
            )
            db.executemany(
                """INSERT INTO faces (id, image_id, idx, x1, y1, x2, y2, score, landmarks,
                   size, sharpness, embedding)
                   VALUES (?, ?, 0, 0, 0, 150, 150, 1.0, '[]', 150, 10.0, ?)""",
                (
                    (int(f), i, self.codec.encode(v))
                    for f, i, v in zip(face_ids, image_ids, vecs, strict=True)
                ),
            )
            db.executemany(
                """INSERT INTO provenance (image_id, source_id, path, ingested_at, expires_at)
                   VALUES (?, ?, ?, ?, ?)""",
                ((i, source_id, f"{prefix}/{i}", at, expires) for i in image_ids),
            )
        return face_ids

    def record_failure(self, source: str, path: str, reason: str) -> None:
        source_id = self._source_id(source)
        with self.writes.alone() as db:
            db.execute(
                """INSERT INTO failures (source_id, path, reason, at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (source_id, path) DO UPDATE SET reason = excluded.reason,
                   at = excluded.at""",
                (source_id, path, reason, now()),
            )

    # -- reads -------------------------------------------------------------------------
    # -- re-embedding ------------------------------------------------------------------
    def images_to_restage(self, model_key: str) -> list[int]:
        rows = self.db.execute(
            """SELECT DISTINCT f.image_id FROM faces f LEFT JOIN restaged r
               ON r.face_id = f.id AND r.model = ? WHERE r.face_id IS NULL
               ORDER BY f.image_id""",
            (model_key,),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def restage(
        self, model_key: str, face_ids: Sequence[int], embeddings: npt.NDArray[np.float32]
    ) -> None:
        with self.writes.transaction():
            # Vectors staged for another model (an earlier, abandoned move) are dropped.
            self.db.execute("DELETE FROM restaged WHERE model != ?", (model_key,))
            self.db.executemany(
                "INSERT OR REPLACE INTO restaged VALUES (?, ?, ?)",
                [
                    (int(i), model_key, self.codec.encode(v))
                    for i, v in zip(face_ids, embeddings, strict=True)
                ],
            )

    def swap_restaged(self, model_key: str) -> int:
        with self.writes.transaction():
            (missing,) = self.db.execute(
                """SELECT COUNT(*) FROM faces f LEFT JOIN restaged r
                   ON r.face_id = f.id AND r.model = ? WHERE r.face_id IS NULL""",
                (model_key,),
            ).fetchone()
            if missing:
                raise InvalidInput(f"{missing} faces have no vector of {model_key} yet")
            cur = self.db.execute(
                """UPDATE faces SET embedding =
                   (SELECT embedding FROM restaged r WHERE r.face_id = faces.id)"""
            )
            self.db.execute("DELETE FROM restaged")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('model', ?)", (model_key,))
        return cur.rowcount

    def get_images(self, image_ids: Sequence[int]) -> dict[int, ImageRecord]:
        ids = sorted({int(i) for i in image_ids})
        if not ids:
            return {}
        out: dict[int, ImageRecord] = {}
        faces: dict[int, list[FaceRecord]] = {i: [] for i in ids}
        provs: dict[int, list[Provenance]] = {i: [] for i in ids}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            for r in self.db.execute(
                f"""SELECT id, image_id, idx, x1, y1, x2, y2, score, landmarks, size, sharpness
                    FROM faces WHERE image_id IN ({marks}) ORDER BY image_id, idx""",
                chunk,
            ):
                faces[r[1]].append(
                    FaceRecord(
                        id=r[0],
                        image_id=r[1],
                        index=r[2],
                        box=BoundingBox(r[3], r[4], r[5], r[6]),
                        score=r[7],
                        landmarks=tuple((float(x), float(y)) for x, y in json.loads(r[8])),
                        size=r[9],
                        sharpness=r[10],
                    )
                )
            for r in self.db.execute(
                f"""SELECT p.image_id, s.name, p.path, p.source_url, p.page_url, p.captured_at,
                           p.ingested_at, p.expires_at, p.video, p.video_time
                    FROM provenance p JOIN sources s ON s.id = p.source_id
                    WHERE p.image_id IN ({marks}) ORDER BY p.image_id, p.id""",
                chunk,
            ):
                provs[r[0]].append(Provenance(*r[1:]))
            for r in self.db.execute(
                f"""SELECT id, sha256, width, height, format, bytes, ingested_at, skipped_faces,
                           phash
                    FROM images WHERE id IN ({marks})""",
                chunk,
            ):
                out[r[0]] = ImageRecord(
                    id=r[0],
                    sha256=r[1],
                    width=r[2],
                    height=r[3],
                    format=r[4],
                    bytes=r[5],
                    ingested_at=r[6],
                    faces=tuple(faces[r[0]]),
                    provenance=tuple(provs[r[0]]),
                    skipped_faces=tuple(json.loads(r[7])),
                    phash=r[8],
                )
        return out

    def list_image_ids(
        self, after: int = 0, limit: int = 50, source: str | None = None
    ) -> list[int]:
        """Image ids above ``after`` in id order (a cursor), optionally of one source."""
        if source is None:
            rows = self.db.execute(
                "SELECT id FROM images WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            )
        else:
            rows = self.db.execute(
                """SELECT DISTINCT p.image_id FROM provenance p JOIN sources s ON s.id = p.source_id
                   WHERE s.name = ? AND p.image_id > ? ORDER BY p.image_id LIMIT ?""",
                (source, after, limit),
            )
        return [int(r[0]) for r in rows]

    def images_published_at(self, where: UrlQuery, limit: int | None = None) -> list[int]:
        """Images with a copy published under ``where``: LIKE narrows the scan (no index
        serves it: an access request is rare), ``where.matches`` decides on each row."""
        pattern = where.like_pattern()
        rows = self.db.execute(
            r"""SELECT image_id, page_url, source_url FROM provenance
               WHERE page_url LIKE ? ESCAPE '\' OR source_url LIKE ? ESCAPE '\'""",
            (pattern, pattern),
        )
        found: set[int] = set()
        for image_id, page_url, source_url in rows:
            if where.matches(page_url) or where.matches(source_url):
                found.add(int(image_id))
                if limit is not None and len(found) > limit:
                    break
        return sorted(found)

    def faces_to_images(self, face_ids: Sequence[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for chunk in _chunks(sorted({int(i) for i in face_ids}), 500):
            marks = ",".join("?" * len(chunk))
            out.update(
                self.db.execute(f"SELECT id, image_id FROM faces WHERE id IN ({marks})", chunk)
            )
        return out

    def face_ids(self, sources: Sequence[str] | None = None) -> npt.NDArray[np.int64]:
        """Every face id, or those of faces in images of ``sources`` (sorted, read-only).

        A source-restricted search asks for the same sources again and again, and at 10M
        faces the join takes seconds, so the answer is kept until the catalog changes.
        """
        if sources is None:
            rows = self.db.execute("SELECT id FROM faces ORDER BY id")
            return np.fromiter((r[0] for r in rows), dtype=np.int64)
        key = tuple(sorted(set(sources)))
        version = self.writes.version
        cached = self._ids_by_sources.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        marks = ",".join("?" * len(key))
        rows = self.db.execute(
            f"""SELECT DISTINCT f.id FROM faces f
                JOIN provenance p ON p.image_id = f.image_id
                JOIN sources s ON s.id = p.source_id
                WHERE s.name IN ({marks}) ORDER BY f.id""",
            key,
        )
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64)
        ids.flags.writeable = False
        if len(self._ids_by_sources) >= IDS_CACHE_ENTRIES:
            self._ids_by_sources.clear()
        self._ids_by_sources[key] = (version, ids)
        return ids

    def iter_embeddings(
        self, batch: int = 10_000
    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        last = -1
        while True:
            rows = self.db.execute(
                "SELECT id, embedding FROM faces WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = self.codec.decode_many(r[1] for r in rows)
            yield ids, vecs
            last = int(ids[-1])

    def embeddings(self, face_ids: Sequence[int]) -> npt.NDArray[np.float32]:
        found: dict[int, bytes] = {}
        for chunk in _chunks([int(i) for i in face_ids], 500):
            marks = ",".join("?" * len(chunk))
            found.update(
                self.db.execute(f"SELECT id, embedding FROM faces WHERE id IN ({marks})", chunk)
            )
        if not found:
            return np.empty((0, 0), dtype=np.float32)
        return self.codec.decode_many(found[int(i)] for i in face_ids)

    def face_state(self) -> tuple[int, int]:
        count, total = self.db.execute("SELECT count, id_sum FROM face_totals").fetchone()
        return int(count), int(total)

    def embeddings_found(
        self, face_ids: Sequence[int]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The embeddings of those ids that exist (ids in the order returned)."""
        found: dict[int, bytes] = {}
        for chunk in _chunks([int(i) for i in face_ids], 500):
            marks = ",".join("?" * len(chunk))
            found.update(
                self.db.execute(f"SELECT id, embedding FROM faces WHERE id IN ({marks})", chunk)
            )
        ids = np.fromiter(found, dtype=np.int64, count=len(found))
        return ids, self.codec.decode_many(found.values())

    def sample_embeddings(self, n: int, seed: int = 0) -> npt.NDArray[np.float32]:
        """Up to n embeddings drawn at random (to train an approximate index)."""
        ids = self.face_ids()
        pick = np.random.default_rng(seed).choice(len(ids), size=min(n, len(ids)), replace=False)
        return self.embeddings_found(np.sort(ids[pick]).tolist())[1]

    def stats(self) -> dict[str, Any]:
        q = self.db.execute
        return {
            "images": q("SELECT COUNT(*) FROM images").fetchone()[0],
            "faces": q("SELECT count FROM face_totals").fetchone()[0],
            "provenance": q("SELECT COUNT(*) FROM provenance").fetchone()[0],
            "sources": q("SELECT COUNT(*) FROM sources").fetchone()[0],
            "failures": q("SELECT COUNT(*) FROM failures").fetchone()[0],
            "images_without_faces": q(
                "SELECT COUNT(*) FROM images WHERE face_count = 0"
            ).fetchone()[0],
        }

    def failures(self, limit: int = 100, source: str | None = None) -> list[dict[str, Any]]:
        rows = self.db.execute(
            """SELECT s.name, f.path, f.reason, f.at FROM failures f
               JOIN sources s ON s.id = f.source_id WHERE ? IS NULL OR s.name = ?
               ORDER BY f.id LIMIT ?""",
            (source, source, limit),
        ).fetchall()
        return [{"source": r[0], "path": r[1], "reason": r[2], "at": r[3]} for r in rows]

    # -- persons -----------------------------------------------------------------------
    def person_assignments(self) -> tuple[dict[int, int], dict[int, int]]:
        current: dict[int, int] = {}
        confirmed: dict[int, int] = {}
        for face, person, sure in self.db.execute(
            "SELECT face_id, person_id, confirmed FROM person_faces"
        ):
            current[face] = person
            if sure:
                confirmed[face] = person
        return current, confirmed

    def write_grouping(
        self, person_of: Mapping[int, int], ungroup: Sequence[int] = ()
    ) -> dict[int, int]:
        stamp = now()
        made: dict[int, int] = {}
        with self.writes.transaction():
            db = self.db
            for number in sorted({p for p in person_of.values() if p < 0}, reverse=True):
                cur = db.execute(
                    "INSERT INTO persons (name, created_at, updated_at) VALUES ('', ?, ?)",
                    (stamp, stamp),
                )
                made[number] = int(cur.lastrowid or 0)
            db.executemany(
                """INSERT INTO person_faces (face_id, person_id) VALUES (?, ?)
                   ON CONFLICT (face_id) DO UPDATE SET person_id = excluded.person_id
                   WHERE person_faces.confirmed = 0""",
                ((f, made.get(p, p)) for f, p in person_of.items()),
            )
            db.executemany(
                "DELETE FROM person_faces WHERE face_id = ?", ((int(f),) for f in ungroup)
            )
            self._drop_empty_persons()
        return made

    def _drop_empty_persons(self) -> None:
        self.db.execute(
            "DELETE FROM persons WHERE id NOT IN (SELECT DISTINCT person_id FROM person_faces)"
        )

    def place_faces(self, face_ids: Sequence[int], person_id: int | None) -> int:
        stamp = now()
        with self.writes.transaction():
            db = self.db
            if person_id is None:
                cur = db.execute(
                    "INSERT INTO persons (name, created_at, updated_at) VALUES ('', ?, ?)",
                    (stamp, stamp),
                )
                person_id = int(cur.lastrowid or 0)
            elif db.execute("SELECT 1 FROM persons WHERE id = ?", (person_id,)).fetchone() is None:
                raise NotFound(f"no person with id {person_id}")
            db.executemany(
                """INSERT INTO person_faces (face_id, person_id, confirmed) VALUES (?, ?, 1)
                   ON CONFLICT (face_id) DO UPDATE SET person_id = excluded.person_id,
                   confirmed = 1""",
                ((int(f), person_id) for f in face_ids),
            )
            db.execute("UPDATE persons SET updated_at = ? WHERE id = ?", (stamp, person_id))
            self._drop_empty_persons()
        return person_id

    def rename_person(self, person_id: int, name: str) -> None:
        with self.writes.alone() as db:
            cur = db.execute(
                "UPDATE persons SET name = ?, updated_at = ? WHERE id = ?",
                (name, now(), person_id),
            )
        if cur.rowcount == 0:
            raise NotFound(f"no person with id {person_id}")

    def persons(self, person_ids: Sequence[int] | None = None) -> list[Person]:
        where, args = "", tuple[int, ...]()
        if person_ids is not None:
            ids = sorted({int(i) for i in person_ids})
            if not ids:
                return []
            where, args = f"WHERE p.id IN ({','.join('?' * len(ids))})", tuple(ids)
        rows = self.db.execute(
            f"""SELECT p.id, p.name, p.created_at, p.updated_at, pf.face_id, pf.confirmed,
                f.image_id FROM persons p JOIN person_faces pf ON pf.person_id = p.id
                JOIN faces f ON f.id = pf.face_id {where} ORDER BY p.id, pf.face_id""",
            args,
        ).fetchall()
        out: list[Person] = []
        for pid, group in itertools.groupby(rows, key=lambda r: r[0]):
            members = list(group)
            first = members[0]
            out.append(
                Person(
                    id=pid,
                    name=first[1],
                    faces=tuple(r[4] for r in members),
                    images=tuple(sorted({r[6] for r in members})),
                    confirmed=tuple(r[4] for r in members if r[5]),
                    created_at=first[2],
                    updated_at=first[3],
                )
            )
        return out

    # -- removal -----------------------------------------------------------------------
    def expired_provenance(self, at: str, sources: Sequence[str]) -> list[int]:
        """Provenance rows of ``sources`` past their expiry (which sources: the caller's
        rule, legal hold)."""
        if not sources:
            return []
        names = sorted(set(sources))
        marks = ",".join("?" * len(names))
        rows = self.db.execute(
            f"""SELECT p.id FROM provenance p JOIN sources s ON s.id = p.source_id
               WHERE p.expires_at <= ? AND s.name IN ({marks}) ORDER BY p.id""",
            (at, *names),
        )
        return [int(r[0]) for r in rows]

    def provenance_of(
        self, sources: Sequence[str] | None = None, image_ids: Sequence[int] | None = None
    ) -> list[int]:
        """Provenance row ids of whole sources or of whole images."""
        out: list[int] = []
        if sources:
            marks = ",".join("?" * len(sources))
            out += [
                int(r[0])
                for r in self.db.execute(
                    f"""SELECT p.id FROM provenance p JOIN sources s ON s.id = p.source_id
                    WHERE s.name IN ({marks})""",
                    list(sources),
                )
            ]
        for chunk in _chunks(sorted({int(i) for i in image_ids or ()}), 500):
            marks = ",".join("?" * len(chunk))
            out += [
                int(r[0])
                for r in self.db.execute(
                    f"SELECT id FROM provenance WHERE image_id IN ({marks})", chunk
                )
            ]
        return sorted(set(out))

    def describe_provenance(self, provenance_ids: Sequence[int]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for chunk in _chunks(sorted(provenance_ids), 500):
            marks = ",".join("?" * len(chunk))
            rows += [
                {
                    "provenance_id": r[0],
                    "image_id": r[1],
                    "source": r[2],
                    "path": r[3],
                    "expires_at": r[4],
                    "sha256": r[5],
                    "video": r[6],
                }
                for r in self.db.execute(
                    f"""SELECT p.id, p.image_id, s.name, p.path, p.expires_at, i.sha256, p.video
                        FROM provenance p JOIN sources s ON s.id = p.source_id
                        JOIN images i ON i.id = p.image_id WHERE p.id IN ({marks})
                        ORDER BY p.id""",
                    chunk,
                )
            ]
        return rows

    def video_in_use(self, video: str) -> bool:
        row = self.db.execute("SELECT 1 FROM provenance WHERE video = ? LIMIT 1", (video,))
        return row.fetchone() is not None

    def remove_provenance(self, provenance_ids: Sequence[int]) -> Removal:
        """Delete provenance rows, and every image left with none, with its faces."""
        db = self.db
        with self.writes.transaction():
            touched: set[int] = set()
            for chunk in _chunks(sorted(set(provenance_ids)), 500):
                marks = ",".join("?" * len(chunk))
                touched |= {
                    int(r[0])
                    for r in db.execute(
                        f"SELECT image_id FROM provenance WHERE id IN ({marks})", chunk
                    )
                }
                db.execute(f"DELETE FROM provenance WHERE id IN ({marks})", chunk)
            orphans: list[tuple[int, str]] = []
            for chunk in _chunks(sorted(touched), 500):
                marks = ",".join("?" * len(chunk))
                orphans += [
                    (int(r[0]), str(r[1]))
                    for r in db.execute(
                        f"""SELECT id, sha256 FROM images WHERE id IN ({marks}) AND id NOT IN
                        (SELECT image_id FROM provenance WHERE image_id IN ({marks}))""",
                        chunk + chunk,
                    )
                ]
            face_ids: list[int] = []
            for chunk in _chunks([i for i, _ in orphans], 500):
                marks = ",".join("?" * len(chunk))
                face_ids += [
                    int(r[0])
                    for r in db.execute(f"SELECT id FROM faces WHERE image_id IN ({marks})", chunk)
                ]
                db.execute(f"DELETE FROM faces WHERE image_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM images WHERE id IN ({marks})", chunk)
            # A person whose last face went goes too: no name outlives its faces.
            self._drop_empty_persons()
        return Removal(
            provenance=len(set(provenance_ids)),
            images=tuple(orphans),
            face_ids=tuple(sorted(face_ids)),
        )

    def scrub(self) -> None:
        """Leave no copy of deleted rows in the database or its WAL (after an erasure)."""
        with self.writes.alone() as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.db.close()


def upgrade_file(path: Path) -> tuple[int, int]:
    """``facesearch db upgrade`` on the catalog file ``path``: (version before, after).
    Opening a catalog upgrades it; this says from which version."""
    if not path.is_file():
        raise NotFound(f"there is no catalog at {path}")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackendUnavailable(f"cannot open catalog {path}: {exc}") from exc
    before = 1 if row is None else int(row[0])
    SqliteCatalog(path).close()
    return before, SCHEMA_VERSION


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])
