"""PostgresCatalog: the catalog on a PostgreSQL server, shared by every API process and
ingest worker of a deployment (``postgresql://user@host:port/db``).

It answers as the SQLite catalog does (the contract suite runs both) and keeps templates
as the bytes of its ``TemplateCodec``, sealed or not, exactly as SQLite does.

Several writers at once: the content hash is unique, so two workers that meet the same
file store one image (``INSERT … ON CONFLICT DO NOTHING``: the second waits for the first
to commit, then adds only its copy); a copy seen again is one upsert; counters are
updated in the writer's transaction. A removal locks the images it may delete before it
checks that no copy is left, so a copy added at the same moment is never deleted with
them: either the removal sees it, or the writer finds the image gone and stores it anew.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from psycopg import errors as pgerrors

from facesearch.catalog.ports import ExpiryRule, FileStamp, NewImage, Removal, UrlQuery
from facesearch.catalog.postgres.connections import Connection, Pool
from facesearch.catalog.postgres.schema import MIGRATIONS, SCHEMA_VERSION
from facesearch.catalog.rows import SOURCE_COLUMNS, source_from, source_row
from facesearch.domain import BoundingBox, FaceRecord, ImageRecord, Person, Provenance, Source
from facesearch.errors import BackendUnavailable, ConfigError, InvalidInput, NotFound
from facesearch.security.templates import TemplateCodec

IDS_CACHE_ENTRIES = 16  # source sets whose face ids are kept between searches
NEVER = "9999-12-31T00:00:00+00:00"  # the expiry of synthetic rows given none
EXPIRY_BATCH = 10_000  # copies re-dated per statement when a retention period changes
RETRIES = 5  # a writer that lost a race (deadlock, an image removed under it) tries again
# A row a writer refers to, removed by another writer meanwhile (the foreign key that
# says so, and what the caller is told if it keeps happening): the writer tries again,
# and its retry sees the row gone.
_REMOVED_UNDER = {
    "provenance_image_id_fkey": "the image was removed while a copy was being added",
    "restaged_face_id_fkey": "a face was removed while its new vector was being staged",
    "person_faces_face_id_fkey": "a face was removed while it was being grouped",
}
Ids = npt.NDArray[np.int64]
T = TypeVar("T")


class _LostRace(Exception):
    """Another writer changed what this transaction read: roll back and try again."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name`` (the same in every process)."""
    digest = hashlib.sha256(f"facesearch:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _Writes:
    """The catalog's write counter: the server's WAL position moves with every committed
    write, by any process (and with other databases' writes on the server: a cache is
    then refreshed for nothing, never kept stale)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.generation = 0

    @property
    def version(self) -> tuple[int, int]:
        with self._pool.connection() as db:
            row = db.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()
        return int(row[0]) if row else 0, self.generation


class PostgresCatalog:
    """Sources, images, provenance, faces and their embeddings in one PostgreSQL database."""

    def __init__(self, url: str, codec: TemplateCodec | None = None) -> None:
        self.url = url
        self.codec = codec or TemplateCodec()
        self.pool = Pool(url, "catalog")
        self.writes = _Writes(self.pool)
        self._ids_by_sources: dict[tuple[str, ...], tuple[tuple[int, int], Ids]] = {}
        self._source_ids: dict[str, int] = {}
        try:
            self._open_schema()
        except BaseException:
            self.pool.close()
            raise

    # -- plumbing ----------------------------------------------------------------------
    def _open_schema(self) -> None:
        """Make the tables of a new database; refuse one at another schema version."""
        version = self.schema_version()
        if version == SCHEMA_VERSION:
            return
        if version == 0:  # a new database: made now
            self.upgrade()
            return
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"the catalog at schema version {version} was made by a newer facesearch "
                f"(this one knows up to {SCHEMA_VERSION}): upgrade facesearch"
            )
        raise ConfigError(
            f"the catalog is at schema version {version}, this facesearch needs "
            f"{SCHEMA_VERSION}: run facesearch db upgrade"
        )

    def schema_version(self) -> int:
        """The schema version stored in the database; 0 when it holds no catalog."""
        with self.pool.connection() as db:
            return _version(db)

    def upgrade(self) -> tuple[int, int]:
        """Apply the migrations the database lacks (``facesearch db upgrade``). Returns
        (version before, version after)."""
        out = upgrade(self.pool)
        self.writes.generation += 1
        return out

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.pool.connection() as db:
            yield db

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction, again when it lost a race with another writer
        (a deadlock, or an image it was adding a copy to removed under it)."""
        for attempt in range(RETRIES):
            try:
                with self.pool.connection() as db:
                    with db.transaction():
                        out = work(db)
                    self.writes.generation += 1
                    return out
            except (pgerrors.TransactionRollback, _LostRace):
                if attempt == RETRIES - 1:
                    raise BackendUnavailable("the catalog is too busy: try again") from None
            except pgerrors.ForeignKeyViolation as exc:
                gone = _REMOVED_UNDER.get(exc.diag.constraint_name or "")
                if gone is None:
                    raise
                if attempt == RETRIES - 1:
                    raise NotFound(gone) from None
        raise AssertionError("unreachable")

    # -- meta --------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._write(
            lambda db: db.execute(
                """INSERT INTO meta VALUES (%s, %s)
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value""",
                (key, value),
            )
        )

    def setdefault_meta(self, key: str, value: str) -> str:
        def work(db: Connection) -> str:
            db.execute(
                "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", (key, value)
            )
            row = db.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
            return str(row[0]) if row else value

        return self._write(work)

    def replace_meta(self, key: str, old: str, new: str) -> bool:
        return self._write(
            lambda db: (
                db.execute(
                    "UPDATE meta SET value = %s WHERE key = %s AND value = %s", (new, key, old)
                ).rowcount
                > 0
            )
        )

    def model_key(self) -> str | None:
        return self.meta("model")

    def set_model_key(self, key: str) -> None:
        self.set_meta("model", key)

    # -- sources -----------------------------------------------------------------------
    def add_source(self, source: Source) -> Source:
        stamp = now()
        try:
            self._write(
                lambda db: db.execute(
                    """INSERT INTO sources (name, description, controller, contact,
                       lawful_basis, special_category_condition, jurisdictions,
                       retention_days, legal_hold, group_people, created_at, updated_at)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    (*source_row(source), stamp, stamp),
                )
            )
        except pgerrors.UniqueViolation:
            raise InvalidInput(f"source {source.name!r} already exists") from None
        return self._source(source.name)

    def update_source(self, source: Source, expiry: ExpiryRule | None = None) -> Source:
        """Replace a source's policy; with ``expiry``, rewrite its copies' expiry dates.

        The rule is Python's (governance.retention), so the dates are computed here, over
        the copies read in batches, and written back in batches, in the same transaction
        as the policy: the source's row stays locked, so no copy is dated by the old and
        the new rule at once."""

        def work(db: Connection) -> None:
            row = db.execute(
                """UPDATE sources SET description = %s, controller = %s, contact = %s,
                   lawful_basis = %s, special_category_condition = %s, jurisdictions = %s,
                   retention_days = %s, legal_hold = %s, group_people = %s, updated_at = %s
                   WHERE name = %s
                   RETURNING id""",
                (*source_row(source)[1:], now(), source.name),
            ).fetchone()
            if row is None or expiry is None:
                return
            with db.cursor(name="facesearch_redate") as copies:
                copies.execute(
                    """SELECT id, captured_at, ingested_at FROM provenance
                       WHERE source_id = %s ORDER BY id""",
                    (row[0],),
                )
                while batch := copies.fetchmany(EXPIRY_BATCH):
                    db.execute(
                        """UPDATE provenance p SET expires_at = v.expires_at
                           FROM unnest(%s::bigint[], %s::text[]) AS v(id, expires_at)
                           WHERE p.id = v.id""",
                        ([r[0] for r in batch], [expiry(r[1], r[2]) for r in batch]),
                    )

        self._write(work)
        return self._source(source.name)

    def get_source(self, name: str, counts: bool = True) -> Source | None:
        with self._read() as db:
            found = db.execute(
                f"SELECT {SOURCE_COLUMNS} FROM sources WHERE name = %s", (name,)
            ).fetchone()
            if found is None:
                return None
            return source_from(found, self._source_counts(db, name) if counts else {})

    def _source(self, name: str) -> Source:
        source = self.get_source(name)
        if source is None:
            raise NotFound(f"no source named {name!r}")
        return source

    def _source_counts(self, db: Connection, name: str) -> dict[str, int]:
        row = db.execute(
            """SELECT COUNT(*), COALESCE(SUM(i.face_count), 0) FROM images i
               WHERE i.id IN (SELECT p.image_id FROM provenance p
                              JOIN sources s ON s.id = p.source_id WHERE s.name = %s)""",
            (name,),
        ).fetchone()
        images, faces = row or (0, 0)
        return {"images": int(images), "faces": int(faces)}

    def list_sources(self, counts: bool = True) -> list[Source]:
        with self._read() as db:
            rows = db.execute(f"SELECT {SOURCE_COLUMNS} FROM sources ORDER BY name").fetchall()
            return [source_from(r, self._source_counts(db, r[0]) if counts else {}) for r in rows]

    def _source_id(self, db: Connection, name: str) -> int:
        """The id of a registered source; refuses an unregistered one. Kept once known:
        a source is never deleted, so its id never changes."""
        known = self._source_ids.get(name)
        if known is not None:
            return known
        row = db.execute("SELECT id FROM sources WHERE name = %s", (name,)).fetchone()
        if row is None:
            raise NotFound(
                f"source {name!r} is not registered: register it with its lawful basis and "
                "retention period first (facesearch sources add)"
            )
        self._source_ids[name] = int(row[0])
        return int(row[0])

    # -- ingest ------------------------------------------------------------------------
    def seen_file(self, source: str, path: str, stamp: FileStamp) -> bool:
        with self._read() as db:
            row = db.execute(
                """SELECT 1 FROM provenance p JOIN sources s ON s.id = p.source_id
                   WHERE s.name = %s AND p.path = %s AND p.file_size = %s
                   AND p.file_mtime_ns = %s LIMIT 1""",
                (source, path, stamp.size, stamp.mtime_ns),
            ).fetchone()
        return row is not None

    def image_id_by_sha(self, sha256: str) -> int | None:
        with self._read() as db:
            row = db.execute("SELECT id FROM images WHERE sha256 = %s", (sha256,)).fetchone()
        return None if row is None else int(row[0])

    def add_image(
        self, image: NewImage, provenance: Provenance, stamp: FileStamp | None
    ) -> tuple[int, list[int], bool]:
        def work(db: Connection) -> tuple[int, list[int], bool]:
            source_id = self._source_id(db, provenance.source)
            row = db.execute(
                """INSERT INTO images (sha256, width, height, format, bytes, face_count,
                   skipped_faces, ingested_at, phash)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (sha256) DO NOTHING RETURNING id""",
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
            ).fetchone()
            if row is None:  # known content (perhaps stored by another worker just now)
                found = db.execute(
                    "SELECT id FROM images WHERE sha256 = %s", (image.sha256,)
                ).fetchone()
                if found is None:  # removed between the two statements: start again
                    raise _LostRace("image removed meanwhile")
                self._insert_provenance(db, int(found[0]), source_id, provenance, stamp)
                return int(found[0]), [], False
            image_id = int(row[0])
            face_ids: list[int] = []
            with db.cursor() as cur:
                if not image.faces:
                    self._insert_provenance(db, image_id, source_id, provenance, stamp)
                    return image_id, face_ids, True
                cur.executemany(
                    """INSERT INTO faces (image_id, idx, x1, y1, x2, y2, score, landmarks,
                       size, sharpness, embedding)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
                    [
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
                        )
                        for i, (face, vec) in enumerate(
                            zip(image.faces, image.embeddings, strict=True)
                        )
                    ],
                    returning=True,
                )
                while True:
                    face_ids += [int(r[0]) for r in cur.fetchall()]
                    if not cur.nextset():
                        break
            self._insert_provenance(db, image_id, source_id, provenance, stamp)
            return image_id, face_ids, True

        return self._write(work)

    def add_provenance(
        self, image_id: int, provenance: Provenance, stamp: FileStamp | None
    ) -> bool:
        return self._write(
            lambda db: self._insert_provenance(
                db, image_id, self._source_id(db, provenance.source), provenance, stamp
            )
        )

    def _insert_provenance(
        self,
        db: Connection,
        image_id: int,
        source_id: int,
        provenance: Provenance,
        stamp: FileStamp | None,
    ) -> bool:
        db.execute(
            "DELETE FROM failures WHERE source_id = %s AND path = %s",
            (source_id, provenance.path),
        )
        size, mtime = (stamp.size, stamp.mtime_ns) if stamp else (None, None)
        if provenance.ingested_at is not None and provenance.expires_at is not None:
            return self._upsert_provenance(db, image_id, source_id, provenance, size, mtime)
        # Same copy seen again: refresh what a manifest may have added, keep the rest.
        refreshed = db.execute(
            """UPDATE provenance SET source_url = COALESCE(%s, source_url),
               page_url = COALESCE(%s, page_url), captured_at = COALESCE(%s, captured_at),
               file_size = %s, file_mtime_ns = %s
               WHERE image_id = %s AND source_id = %s AND path = %s""",
            (
                provenance.source_url,
                provenance.page_url,
                provenance.captured_at,
                size,
                mtime,
                image_id,
                source_id,
                provenance.path,
            ),
        ).rowcount
        if refreshed:
            return False
        raise InvalidInput(
            "a new copy needs its ingest and expiry dates (governance.retention.stamp)"
        )

    def _upsert_provenance(
        self,
        db: Connection,
        image_id: int,
        source_id: int,
        provenance: Provenance,
        size: int | None,
        mtime: int | None,
    ) -> bool:
        """A new copy, or the same copy seen again (its dates kept, what a manifest may
        have added refreshed): whether it was new."""
        row = db.execute(
            """INSERT INTO provenance (image_id, source_id, path, source_url, page_url,
               captured_at, file_size, file_mtime_ns, ingested_at, expires_at, video,
               video_time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (source_id, path, image_id) DO UPDATE SET
               source_url = COALESCE(excluded.source_url, provenance.source_url),
               page_url = COALESCE(excluded.page_url, provenance.page_url),
               captured_at = COALESCE(excluded.captured_at, provenance.captured_at),
               file_size = excluded.file_size, file_mtime_ns = excluded.file_mtime_ns
               RETURNING xmax = 0""",
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
        ).fetchone()
        return bool(row and row[0])

    def bulk_add_embeddings(
        self,
        source: str,
        embeddings: npt.NDArray[np.float32],
        prefix: str = "synthetic",
        expires_at: str = NEVER,
    ) -> npt.NDArray[np.int64]:
        """Store one synthetic image with one face per embedding, in one transaction.

        For benchmarks and tests at scale, where running the detector is not the point
        (as ``SqliteCatalog.bulk_add_embeddings``). Rows go in by ``COPY``. Returns the
        new face ids in order."""
        vecs = np.ascontiguousarray(embeddings, dtype=np.float32)
        at = now()

        def work(db: Connection) -> Ids:
            source_id = self._source_id(db, source)
            n = len(vecs)
            image_ids = [
                int(r[0])
                for r in db.execute(
                    "SELECT nextval(pg_get_serial_sequence('images', 'id')) "
                    "FROM generate_series(1, %s)",
                    (n,),
                )
            ]
            face_ids = [
                int(r[0])
                for r in db.execute(
                    "SELECT nextval(pg_get_serial_sequence('faces', 'id')) "
                    "FROM generate_series(1, %s)",
                    (n,),
                )
            ]
            with db.cursor() as cur:
                with cur.copy(
                    "COPY images (id, sha256, width, height, format, bytes, face_count, "
                    "ingested_at) FROM STDIN"
                ) as copy:
                    for i, v in zip(image_ids, vecs, strict=True):
                        sha = hashlib.sha256(v.tobytes()).hexdigest()
                        copy.write_row((i, sha, 150, 150, "synthetic", 0, 1, at))
                with cur.copy(
                    "COPY faces (id, image_id, idx, x1, y1, x2, y2, score, landmarks, size, "
                    "sharpness, embedding) FROM STDIN"
                ) as copy:
                    for f, i, v in zip(face_ids, image_ids, vecs, strict=True):
                        copy.write_row(
                            (f, i, 0, 0, 0, 150, 150, 1.0, "[]", 150, 10.0, self.codec.encode(v))
                        )
                with cur.copy(
                    "COPY provenance (image_id, source_id, path, ingested_at, expires_at) "
                    "FROM STDIN"
                ) as copy:
                    for i in image_ids:
                        copy.write_row((i, source_id, f"{prefix}/{i}", at, expires_at))
            return np.asarray(face_ids, dtype=np.int64)

        return self._write(work)

    def record_failure(self, source: str, path: str, reason: str) -> None:
        def work(db: Connection) -> None:
            db.execute(
                """INSERT INTO failures (source_id, path, reason, at) VALUES (%s, %s, %s, %s)
                   ON CONFLICT (source_id, path) DO UPDATE SET reason = excluded.reason,
                   at = excluded.at""",
                (self._source_id(db, source), path, reason, now()),
            )

        self._write(work)

    # -- re-embedding ------------------------------------------------------------------
    def images_to_restage(self, model_key: str) -> list[int]:
        with self._read() as db:
            rows = db.execute(
                """SELECT DISTINCT f.image_id FROM faces f LEFT JOIN restaged r
                   ON r.face_id = f.id AND r.model = %s WHERE r.face_id IS NULL
                   ORDER BY f.image_id""",
                (model_key,),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def restage(
        self, model_key: str, face_ids: Sequence[int], embeddings: npt.NDArray[np.float32]
    ) -> None:
        ids = [int(i) for i in face_ids]
        blobs = [self.codec.encode(v) for v in embeddings]
        if len(ids) != len(blobs):
            raise InvalidInput(f"{len(ids)} face ids for {len(blobs)} vectors")

        def work(db: Connection) -> None:
            # Vectors staged for another model (an earlier, abandoned move) are dropped.
            db.execute("DELETE FROM restaged WHERE model != %s", (model_key,))
            # A face erased meanwhile is skipped: its vector has nothing to replace.
            db.execute(
                """INSERT INTO restaged (face_id, model, embedding)
                   SELECT v.id, %s, v.embedding
                   FROM unnest(%s::bigint[], %s::bytea[]) AS v(id, embedding)
                   JOIN faces f ON f.id = v.id
                   ON CONFLICT (face_id) DO UPDATE SET model = excluded.model,
                   embedding = excluded.embedding""",
                (model_key, ids, blobs),
            )

        self._write(work)

    def swap_restaged(self, model_key: str) -> int:
        def work(db: Connection) -> int:
            # No face may be added, or vector staged, between the check and the swap: a
            # face ingested meanwhile would keep a vector of the old model.
            db.execute("LOCK TABLE faces, restaged IN SHARE ROW EXCLUSIVE MODE")
            row = db.execute(
                """SELECT COUNT(*) FROM faces f LEFT JOIN restaged r
                   ON r.face_id = f.id AND r.model = %s WHERE r.face_id IS NULL""",
                (model_key,),
            ).fetchone()
            missing = int(row[0]) if row else 0
            if missing:
                raise InvalidInput(f"{missing} faces have no vector of {model_key} yet")
            changed = db.execute(
                """UPDATE faces f SET embedding = r.embedding FROM restaged r
                   WHERE r.face_id = f.id AND r.model = %s""",
                (model_key,),
            ).rowcount
            db.execute("DELETE FROM restaged")
            db.execute(
                """INSERT INTO meta VALUES ('model', %s)
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value""",
                (model_key,),
            )
            return changed

        return self._write(work)

    # -- reads -------------------------------------------------------------------------
    def get_images(self, image_ids: Sequence[int]) -> dict[int, ImageRecord]:
        ids = sorted({int(i) for i in image_ids})
        if not ids:
            return {}
        out: dict[int, ImageRecord] = {}
        faces: dict[int, list[FaceRecord]] = {i: [] for i in ids}
        provs: dict[int, list[Provenance]] = {i: [] for i in ids}
        with self._read() as db:
            for r in db.execute(
                """SELECT id, image_id, idx, x1, y1, x2, y2, score, landmarks, size, sharpness
                   FROM faces WHERE image_id = ANY(%s) ORDER BY image_id, idx""",
                (ids,),
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
            for r in db.execute(
                """SELECT p.image_id, s.name, p.path, p.source_url, p.page_url, p.captured_at,
                          p.ingested_at, p.expires_at, p.video, p.video_time
                   FROM provenance p JOIN sources s ON s.id = p.source_id
                   WHERE p.image_id = ANY(%s) ORDER BY p.image_id, p.id""",
                (ids,),
            ):
                provs[r[0]].append(Provenance(*r[1:]))
            for r in db.execute(
                """SELECT id, sha256, width, height, format, bytes, ingested_at, skipped_faces,
                   phash FROM images WHERE id = ANY(%s)""",
                (ids,),
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
        with self._read() as db:
            if source is None:
                rows = db.execute(
                    "SELECT id FROM images WHERE id > %s ORDER BY id LIMIT %s", (after, limit)
                ).fetchall()
            else:
                rows = db.execute(
                    """SELECT DISTINCT p.image_id FROM provenance p
                       JOIN sources s ON s.id = p.source_id
                       WHERE s.name = %s AND p.image_id > %s ORDER BY p.image_id LIMIT %s""",
                    (source, after, limit),
                ).fetchall()
        return [int(r[0]) for r in rows]

    def images_published_at(self, where: UrlQuery, limit: int | None = None) -> list[int]:
        """Images with a copy published under ``where``: LIKE narrows the scan,
        ``where.matches`` decides on each row."""
        pattern = where.like_pattern()
        found: set[int] = set()
        with self._read() as db, db.transaction(), db.cursor(name="facesearch_urls") as rows:
            rows.execute(
                r"""SELECT image_id, page_url, source_url FROM provenance
                   WHERE page_url ILIKE %s ESCAPE '\' OR source_url ILIKE %s ESCAPE '\'""",
                (pattern, pattern),
            )
            for image_id, page_url, source_url in rows:
                if where.matches(page_url) or where.matches(source_url):
                    found.add(int(image_id))
                    if limit is not None and len(found) > limit:
                        break
        return sorted(found)

    def faces_to_images(self, face_ids: Sequence[int]) -> dict[int, int]:
        ids = sorted({int(i) for i in face_ids})
        with self._read() as db:
            rows = db.execute(
                "SELECT id, image_id FROM faces WHERE id = ANY(%s)", (ids,)
            ).fetchall()
        return {int(f): int(i) for f, i in rows}

    def face_ids(self, sources: Sequence[str] | None = None) -> npt.NDArray[np.int64]:
        """Every face id, or those of faces in images of ``sources`` (sorted, read-only);
        a source set's answer is kept until the catalog changes."""
        if sources is None:
            with self._read() as db:
                return _ids(db, "SELECT id FROM faces ORDER BY id", ())
        key = tuple(sorted(set(sources)))
        version = self.writes.version
        cached = self._ids_by_sources.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        with self._read() as db:
            ids = _ids(
                db,
                """SELECT f.id FROM faces f WHERE f.image_id IN (
                       SELECT p.image_id FROM provenance p JOIN sources s ON s.id = p.source_id
                       WHERE s.name = ANY(%s)) ORDER BY f.id""",
                (list(key),),
            )
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
            with self._read() as db:
                rows = db.execute(
                    "SELECT id, embedding FROM faces WHERE id > %s ORDER BY id LIMIT %s",
                    (last, batch),
                    binary=True,
                ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            yield ids, self.codec.decode_many(bytes(r[1]) for r in rows)
            last = int(ids[-1])

    def _blobs(self, face_ids: Sequence[int]) -> dict[int, bytes]:
        ids = [int(i) for i in face_ids]
        if not ids:
            return {}
        with self._read() as db:
            rows = db.execute(
                "SELECT id, embedding FROM faces WHERE id = ANY(%s)", (ids,), binary=True
            ).fetchall()
        return {int(r[0]): bytes(r[1]) for r in rows}

    def embeddings(self, face_ids: Sequence[int]) -> npt.NDArray[np.float32]:
        found = self._blobs(face_ids)
        if not found:
            return np.empty((0, 0), dtype=np.float32)
        return self.codec.decode_many(found[int(i)] for i in face_ids)

    def face_state(self) -> tuple[int, int]:
        with self._read() as db:
            row = db.execute("SELECT count, id_sum FROM face_totals").fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def embeddings_found(
        self, face_ids: Sequence[int]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The embeddings of those ids that exist (ids in the order returned)."""
        found = self._blobs(face_ids)
        ids = np.fromiter(found, dtype=np.int64, count=len(found))
        return ids, self.codec.decode_many(found.values())

    def sample_embeddings(self, n: int, seed: int = 0) -> npt.NDArray[np.float32]:
        """Up to n embeddings drawn at random (to train an approximate index)."""
        ids = self.face_ids()
        pick = np.random.default_rng(seed).choice(len(ids), size=min(n, len(ids)), replace=False)
        return self.embeddings_found(np.sort(ids[pick]).tolist())[1]

    def stats(self) -> dict[str, Any]:
        with self._read() as db:
            row = db.execute(
                """SELECT (SELECT COUNT(*) FROM images), (SELECT count FROM face_totals),
                   (SELECT COUNT(*) FROM provenance), (SELECT COUNT(*) FROM sources),
                   (SELECT COUNT(*) FROM failures),
                   (SELECT COUNT(*) FROM images WHERE face_count = 0)"""
            ).fetchone()
        names = ("images", "faces", "provenance", "sources", "failures", "images_without_faces")
        return dict(zip(names, (int(v) for v in row or (0,) * 6), strict=True))

    def failures(self, limit: int = 100, source: str | None = None) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute(
                """SELECT s.name, f.path, f.reason, f.at FROM failures f
                   JOIN sources s ON s.id = f.source_id
                   WHERE %s::text IS NULL OR s.name = %s ORDER BY f.id LIMIT %s""",
                (source, source, limit),
            ).fetchall()
        return [{"source": r[0], "path": r[1], "reason": r[2], "at": r[3]} for r in rows]

    # -- persons -----------------------------------------------------------------------
    # Every writer of persons takes the ``persons`` lock for its transaction: a person
    # found empty and deleted by one writer could otherwise be given a face by another.
    def person_assignments(self) -> tuple[dict[int, int], dict[int, int]]:
        current: dict[int, int] = {}
        confirmed: dict[int, int] = {}
        with self._read() as db:
            for face, person, sure in db.execute(
                "SELECT face_id, person_id, confirmed FROM person_faces"
            ):
                current[int(face)] = int(person)
                if sure:
                    confirmed[int(face)] = int(person)
        return current, confirmed

    def write_grouping(
        self, person_of: Mapping[int, int], ungroup: Sequence[int] = ()
    ) -> dict[int, int]:
        stamp = now()

        def work(db: Connection) -> dict[int, int]:
            _lock_persons(db)
            made: dict[int, int] = {}
            for number in sorted({p for p in person_of.values() if p < 0}, reverse=True):
                row = db.execute(
                    """INSERT INTO persons (name, created_at, updated_at)
                       VALUES ('', %s, %s) RETURNING id""",
                    (stamp, stamp),
                ).fetchone()
                made[number] = int(row[0]) if row else 0
            faces = [int(f) for f in person_of]
            persons = [int(made.get(p, p)) for p in person_of.values()]
            # A face erased meanwhile is skipped; a confirmed face stays where it is.
            db.execute(
                """INSERT INTO person_faces (face_id, person_id)
                   SELECT v.face_id, v.person_id
                   FROM unnest(%s::bigint[], %s::bigint[]) AS v(face_id, person_id)
                   JOIN faces f ON f.id = v.face_id
                   ON CONFLICT (face_id) DO UPDATE SET person_id = excluded.person_id
                   WHERE NOT person_faces.confirmed""",
                (faces, persons),
            )
            db.execute(
                "DELETE FROM person_faces WHERE face_id = ANY(%s)", ([int(f) for f in ungroup],)
            )
            _drop_empty_persons(db)
            return made

        return self._write(work)

    def place_faces(self, face_ids: Sequence[int], person_id: int | None) -> int:
        stamp = now()
        faces = [int(f) for f in face_ids]

        def work(db: Connection) -> int:
            _lock_persons(db)
            if person_id is None:
                row = db.execute(
                    """INSERT INTO persons (name, created_at, updated_at)
                       VALUES ('', %s, %s) RETURNING id""",
                    (stamp, stamp),
                ).fetchone()
            else:
                row = db.execute(
                    "UPDATE persons SET updated_at = %s WHERE id = %s RETURNING id",
                    (stamp, person_id),
                ).fetchone()
            if row is None:
                raise NotFound(f"no person with id {person_id}")
            target = int(row[0])
            db.execute(
                """INSERT INTO person_faces (face_id, person_id, confirmed)
                   SELECT v.face_id, %s, TRUE FROM unnest(%s::bigint[]) AS v(face_id)
                   JOIN faces f ON f.id = v.face_id
                   ON CONFLICT (face_id) DO UPDATE SET person_id = excluded.person_id,
                   confirmed = TRUE""",
                (target, faces),
            )
            _drop_empty_persons(db)
            return target

        return self._write(work)

    def rename_person(self, person_id: int, name: str) -> None:
        changed = self._write(
            lambda db: (
                db.execute(
                    "UPDATE persons SET name = %s, updated_at = %s WHERE id = %s",
                    (name, now(), person_id),
                ).rowcount
            )
        )
        if not changed:
            raise NotFound(f"no person with id {person_id}")

    def persons(self, person_ids: Sequence[int] | None = None) -> list[Person]:
        where, args = "", tuple[Any, ...]()
        if person_ids is not None:
            ids = sorted({int(i) for i in person_ids})
            if not ids:
                return []
            where, args = "WHERE p.id = ANY(%s)", (ids,)
        with self._read() as db:
            rows = db.execute(
                f"""SELECT p.id, p.name, p.created_at, p.updated_at, pf.face_id, pf.confirmed,
                    f.image_id FROM persons p JOIN person_faces pf ON pf.person_id = p.id
                    JOIN faces f ON f.id = pf.face_id {where}
                    ORDER BY p.id, pf.face_id""".encode(),
                args,
            ).fetchall()
        out: list[Person] = []
        for pid, group in itertools.groupby(rows, key=lambda r: r[0]):
            members = list(group)
            first = members[0]
            out.append(
                Person(
                    id=int(pid),
                    name=first[1],
                    faces=tuple(int(r[4]) for r in members),
                    images=tuple(sorted({int(r[6]) for r in members})),
                    confirmed=tuple(int(r[4]) for r in members if r[5]),
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
        with self._read() as db:
            rows = db.execute(
                """SELECT p.id FROM provenance p JOIN sources s ON s.id = p.source_id
                   WHERE p.expires_at <= %s AND s.name = ANY(%s) ORDER BY p.id""",
                (at, sorted(set(sources))),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def provenance_of(
        self, sources: Sequence[str] | None = None, image_ids: Sequence[int] | None = None
    ) -> list[int]:
        """Provenance row ids of whole sources or of whole images."""
        out: set[int] = set()
        with self._read() as db:
            if sources:
                out |= {
                    int(r[0])
                    for r in db.execute(
                        """SELECT p.id FROM provenance p JOIN sources s ON s.id = p.source_id
                           WHERE s.name = ANY(%s)""",
                        (list(sources),),
                    )
                }
            if image_ids:
                out |= {
                    int(r[0])
                    for r in db.execute(
                        "SELECT id FROM provenance WHERE image_id = ANY(%s)",
                        ([int(i) for i in image_ids],),
                    )
                }
        return sorted(out)

    def describe_provenance(self, provenance_ids: Sequence[int]) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute(
                """SELECT p.id, p.image_id, s.name, p.path, p.expires_at, i.sha256, p.video
                   FROM provenance p JOIN sources s ON s.id = p.source_id
                   JOIN images i ON i.id = p.image_id WHERE p.id = ANY(%s) ORDER BY p.id""",
                ([int(i) for i in provenance_ids],),
            ).fetchall()
        keys = ("provenance_id", "image_id", "source", "path", "expires_at", "sha256", "video")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def video_in_use(self, video: str) -> bool:
        with self._read() as db:
            row = db.execute(
                "SELECT 1 FROM provenance WHERE video = %s LIMIT 1", (video,)
            ).fetchone()
        return row is not None

    def remove_provenance(self, provenance_ids: Sequence[int]) -> Removal:
        """Delete provenance rows, every image left with none, with its faces, and the
        persons left with no face."""
        wanted = sorted({int(i) for i in provenance_ids})

        def work(db: Connection) -> Removal:
            touched = [
                int(r[0])
                for r in db.execute(
                    "DELETE FROM provenance WHERE id = ANY(%s) RETURNING image_id", (wanted,)
                )
            ]
            # Lock the images first, then look for copies: a copy another writer adds at
            # this moment is either seen here (the image stays) or finds the image gone.
            db.execute(
                "SELECT id FROM images WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                (sorted(set(touched)),),
            )
            orphans = [
                (int(r[0]), str(r[1]))
                for r in db.execute(
                    """SELECT id, sha256 FROM images i WHERE id = ANY(%s) AND NOT EXISTS
                       (SELECT 1 FROM provenance p WHERE p.image_id = i.id) ORDER BY id""",
                    (sorted(set(touched)),),
                )
            ]
            gone = [i for i, _ in orphans]
            if gone:
                # Before the faces go (a face being grouped at this moment, not yet
                # visible here, would otherwise leave its person empty but kept).
                _lock_persons(db)
            face_ids = [
                int(r[0])
                for r in db.execute(
                    "DELETE FROM faces WHERE image_id = ANY(%s) RETURNING id", (gone,)
                )
            ]
            db.execute("DELETE FROM images WHERE id = ANY(%s)", (gone,))
            if gone:
                # A person whose last face went goes too: no name outlives its faces.
                _drop_empty_persons(db)
            return Removal(
                provenance=len(wanted), images=tuple(orphans), face_ids=tuple(sorted(face_ids))
            )

        return self._write(work)

    def scrub(self) -> None:
        """Leave no copy of deleted rows in the database's files: ``VACUUM FULL`` rewrites
        the tables that held them into new files (the old ones are deleted), then the
        server's write-ahead log is moved on past them, so that the segments holding the
        deleted rows are no longer needed and are removed at the checkpoint (when the
        server is configured to delete them: docs/scaling.md says what this cannot reach,
        such as WAL archives, replicas and backups). Switching the log and checkpoints
        need a superuser or the pg_checkpoint role; without them the tables are still
        rewritten."""
        with self.pool.connection() as db:
            for table in (
                "faces",
                "images",
                "provenance",
                "failures",
                "restaged",
                "person_faces",
                "persons",
            ):
                db.execute(f"VACUUM FULL {table}".encode())
            for _ in range(2):
                try:
                    db.execute("SELECT pg_switch_wal()")
                    db.execute("CHECKPOINT")
                except pgerrors.InsufficientPrivilege:
                    break
        self.writes.generation += 1

    def close(self) -> None:
        self.pool.close()


def _version(db: Connection) -> int:
    if db.execute("SELECT to_regclass('meta')").fetchone() in (None, (None,)):
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def upgrade(pool: Pool) -> tuple[int, int]:
    """Apply the migrations the database lacks, in one transaction, one process at a
    time; refuse a database made by a newer release. Returns (before, after)."""
    key = lock_key("catalog schema")
    with pool.connection() as db:
        # The lock is held by the session and the version looked at again in a
        # transaction begun after the wait: PostgreSQL takes in other sessions' changes
        # to its system catalogs at a transaction's start, so a look in the transaction
        # that waited could still find no tables, from a lookup this connection made
        # before another process made them, and make them twice.
        db.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            with db.transaction():
                before = _version(db)
                if before > SCHEMA_VERSION:
                    raise ConfigError(
                        f"the catalog is at schema version {before}, made by a newer "
                        f"facesearch (this one knows up to {SCHEMA_VERSION}): upgrade "
                        f"facesearch"
                    )
                if before == SCHEMA_VERSION:  # another process made or upgraded it
                    return before, SCHEMA_VERSION
                for step in MIGRATIONS[before:]:
                    db.execute(step.encode())
                db.execute(
                    """INSERT INTO meta VALUES ('schema_version', %s)
                       ON CONFLICT (key) DO UPDATE SET value = excluded.value""",
                    (str(SCHEMA_VERSION),),
                )
        finally:
            if not (db.closed or db.broken):
                db.execute("SELECT pg_advisory_unlock(%s)", (key,))
    return before, SCHEMA_VERSION


def upgrade_database(url: str) -> tuple[int, int]:
    """``facesearch db upgrade`` on the catalog at ``url`` (which may be at any older
    version, where opening it is refused)."""
    pool = Pool(url, "catalog")
    try:
        return upgrade(pool)
    finally:
        pool.close()


def _lock_persons(db: Connection) -> None:
    """Hold the ``persons`` lock until the transaction ends (every process)."""
    db.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("persons"),))


def _drop_empty_persons(db: Connection) -> None:
    db.execute(
        """DELETE FROM persons p WHERE NOT EXISTS
           (SELECT 1 FROM person_faces pf WHERE pf.person_id = p.id)"""
    )


def _ids(db: Connection, sql: str, args: Sequence[Any]) -> Ids:
    rows = db.execute(sql.encode(), args, binary=True)
    return np.fromiter((r[0] for r in rows), dtype=np.int64)
