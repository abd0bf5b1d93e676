"""The engine as the HTTP API uses it, safely from many requests at once.

Model work (decode, detect, embed) runs on the model pool (serving/pool.py), off the
event loop. Catalog and index calls go through one lock: the engine's SQLite connection
and index are shared. Each first catches up with what another process (a command-line
ingest into the same home) committed meanwhile (``FaceSearch.catch_up``).
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from facesearch.domain import ImageRecord, Requester, SearchResult
from facesearch.engine import FaceSearch, Probe
from facesearch.errors import InvalidInput, NotFound
from facesearch.ingest.analyse import sha256_of
from facesearch.ingest.items import IngestItem
from facesearch.ingest.report import IngestReport
from facesearch.serving.pool import ModelPool, Models, Timings

T = TypeVar("T")
# An API call that writes the index waits this long for another process writing the same
# home (a command-line ingest), then answers 503.
INDEX_LOCK_WAIT_SECONDS = 10.0


class Gateway:
    def __init__(self, engine: FaceSearch, workers: int, models: Models | None = None) -> None:
        self.engine = engine
        engine.lock_wait = INDEX_LOCK_WAIT_SECONDS
        self.pool = ModelPool(engine.model_spec, engine.limits, workers, models)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop the model pool (at app shutdown); the next model job starts a new one."""
        self.pool.close()

    @property
    def workers(self) -> int:
        return self.pool.workers

    async def infer(self, fn: Callable[..., T], *args: Any, timings: Timings | None = None) -> T:
        """Run model work on the pool (see ModelPool.infer)."""
        return await self.pool.infer(fn, *args, timings=timings)

    @property
    def busy(self) -> int:
        """Model jobs running now."""
        return self.pool.busy

    @contextmanager
    def _current(self) -> Iterator[FaceSearch]:
        """The engine, to this caller alone, caught up with what other processes (a
        command-line ingest beside the server) committed to the home meanwhile."""
        with self._lock:
            self.engine.catch_up()
            yield self.engine

    async def locked(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run an engine call that reads or writes the catalog and index, one at a time."""

        def call() -> T:
            with self._current():
                return fn(*args, **kwargs)

        return await run_in_threadpool(call)

    # -- model work (on the pool) -------------------------------------------------------
    def probe(self, data: bytes, timings: Timings) -> Probe:
        """Decode, detect and embed, like FaceSearch.probe, timing each stage."""
        return self.pool.probe(data, timings)

    async def probe_photo(self, data: bytes) -> Probe:
        """The probe of an uploaded photo, made on the model pool, outside the lock."""
        return await self.pool.probe_photo(data)

    # -- catalog and index (under the lock) ----------------------------------------------
    def search(
        self,
        probe: Probe,
        face: int | None,
        top_k: int,
        threshold: float | None,
        sources: Sequence[str] | None,
        who: Requester,
    ) -> SearchResult:
        with self._current() as engine:
            [result] = engine.search(
                probe, face=face, top_k=top_k, threshold=threshold, sources=sources, who=who
            )
        return result

    def search_many(
        self,
        probes: Sequence[Probe],
        face_ids: Sequence[int],
        combine: str,
        top_k: int,
        threshold: float | None,
        sources: Sequence[str] | None,
        who: Requester,
    ) -> SearchResult:
        """Several probes of one person (photos embedded on the pool, stored faces)."""
        with self._current() as engine:
            return engine.search_many(
                probes,
                face_ids=face_ids,
                combine=combine,
                top_k=top_k,
                threshold=threshold,
                sources=sources,
                who=who,
            )

    def image(self, image_id: int) -> ImageRecord:
        with self._current() as engine:
            record: ImageRecord = engine.show(image_id)
        return record

    def face_image(self, face_id: int) -> ImageRecord:
        with self._current() as engine:
            image_id = engine.catalog.faces_to_images([face_id]).get(face_id)
            if image_id is None:
                raise NotFound(f"no face with id {face_id}")
            record: ImageRecord = engine.show(image_id)
        return record

    def kept(self, path: Path, sha256: str) -> bool:
        """Whether the catalog names ``path`` as a copy of the image with this hash."""
        with self._lock:
            image_id = self.engine.catalog.image_id_by_sha(sha256)
            if image_id is None:
                return False
            record: ImageRecord = self.engine.show(image_id)
        return any(prov.path == str(path) for prov in record.provenance)

    def ingest_file(self, item: IngestItem, source: str, sha256: str) -> tuple[IngestReport, int]:
        """Ingest one saved upload; returns the report and the image id."""
        with self._current() as engine:
            report = engine.ingest([item], source=source, workers=1)
            image_id = engine.catalog.image_id_by_sha(sha256)
        if image_id is None:
            reason = report.failed[0]["reason"] if report.failed else "unknown reason"
            raise InvalidInput(f"the image could not be ingested: {reason}")
        return report, image_id

    def ingest_items(
        self,
        items: Sequence[IngestItem],
        source: str,
        progress: Callable[[IngestReport, int], None] | None,
        who: Requester,
    ) -> IngestReport:
        """Ingest prepared items (a chunk of an ingest job) under the lock, in this thread."""
        with self._current() as engine:
            return engine.ingest(list(items), source=source, workers=1, progress=progress, who=who)


def image_bytes(image: ImageRecord) -> bytes:
    """The bytes of the image as ingested, from the first copy still on disk unchanged.

    A copy counts only if its SHA-256 is the catalog's (a file swapped for another of the
    same size is not served) and only through a path that stays in the folder it was
    ingested into (a symlink put there to point elsewhere is not followed).
    """
    for prov in image.provenance:
        data = _verified(Path(prov.path), image)
        if data is not None:
            return data
    raise NotFound(f"the file of image {image.id} is no longer where it was ingested from")


def _verified(path: Path, image: ImageRecord) -> bytes | None:
    try:
        folder = path.parent.resolve(strict=True)
        real = path.resolve(strict=True)
        if not real.is_relative_to(folder):
            return None
        # O_NOFOLLOW: a symlink swapped in after resolve() is refused, not followed.
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size != image.bytes:
                return None
            data = fh.read(image.bytes + 1)
    except (OSError, RuntimeError):
        return None
    return data if sha256_of(data) == image.sha256 else None
