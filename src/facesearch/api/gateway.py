"""The engine as the HTTP API uses it, safely from many requests at once.

Model work (decode, detect, embed) runs on a bounded pool of threads, each with its own
models (dlib releases the GIL, and its networks keep per-call state, so threads must not
share one), so a slow upload never blocks the event loop or other requests. Catalog and
index calls go through one lock: the engine's SQLite connection and index are shared.
Each first catches up with what another process (a command-line ingest into the same
home) committed meanwhile (``FaceSearch.catch_up``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from facesearch.domain import ImageRecord, ProbeFace, Requester, SearchResult
from facesearch.engine import FaceSearch, Probe
from facesearch.errors import InvalidInput, NotFound
from facesearch.imaging import decode_image
from facesearch.ingest.analyse import sha256_of
from facesearch.ingest.items import IngestItem
from facesearch.ingest.report import IngestReport
from facesearch.vision.ports import FaceDetector, FaceEmbedder

T = TypeVar("T")
# An API call that writes the index waits this long for another process writing the same
# home (a command-line ingest), then answers 503.
INDEX_LOCK_WAIT_SECONDS = 10.0
Models = Callable[[], tuple[FaceDetector, FaceEmbedder]]


@dataclass
class Timings:
    """Milliseconds per stage of one request."""

    stages: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.stages[stage] = round(self.stages.get(stage, 0.0) + (now - since) * 1000, 3)
        return now


class Gateway:
    def __init__(self, engine: FaceSearch, workers: int, models: Models | None = None) -> None:
        self.engine = engine
        engine.lock_wait = INDEX_LOCK_WAIT_SECONDS
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._lock = threading.Lock()
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._local = threading.local()
        self._models = models or self._spec_models
        # Models given to the engine are one object for every thread: one call at a time.
        self._shared = threading.Lock() if models is None and engine.model_spec.shared else None

    def close(self) -> None:
        """Stop the pool (at app shutdown); the next model job starts a new one."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="fs-infer"
                )
            return self._pool

    def _spec_models(self) -> tuple[FaceDetector, FaceEmbedder]:
        """The engine's models (the ones its model key names), built for this thread."""
        spec = self.engine.model_spec
        return spec.build_detector(), spec.build_embedder()

    def _thread_models(self) -> tuple[FaceDetector, FaceEmbedder]:
        models: tuple[FaceDetector, FaceEmbedder] | None = getattr(self._local, "models", None)
        if models is None:
            models = self._models()
            self._local.models = models
        return models

    async def infer(self, fn: Callable[..., T], *args: Any, timings: Timings | None = None) -> T:
        """Run model work on the pool (bounded), off the event loop.

        With ``timings``, the wait for a free worker is recorded as the stage "queue".
        """
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            # Requests beyond this many wait here rather than in the pool's unbounded queue.
            self._slots = (loop, asyncio.Semaphore(self.workers * 4))
        queued = time.perf_counter()
        job = functools.partial(fn, *args)
        async with self._slots[1]:
            return await loop.run_in_executor(self._executor(), self._counted, job, queued, timings)

    def _counted(self, job: Callable[[], T], queued: float, timings: Timings | None) -> T:
        if timings is not None:
            timings.add("queue", queued)
        with self._busy_lock:
            self._busy += 1
        try:
            return job()
        finally:
            with self._busy_lock:
                self._busy -= 1

    @property
    def busy(self) -> int:
        """Model jobs running now."""
        return self._busy

    async def locked(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run an engine call that reads or writes the catalog and index, one at a time."""

        def call() -> T:
            with self._lock:
                self.engine.catch_up()
                return fn(*args, **kwargs)

        return await run_in_threadpool(call)

    # -- model work (on the pool) -------------------------------------------------------
    def probe(self, data: bytes, timings: Timings) -> Probe:
        """Decode, detect and embed, like FaceSearch.probe, timing each stage."""
        detector, embedder = self._thread_models()
        t = time.perf_counter()
        decoded = decode_image(data, self.engine.limits)
        t = timings.add("decode", t)
        with self._shared or contextlib.nullcontext():
            found = detector.detect_faces(decoded.pixels)
            t = timings.add("detect", t)
            embeddings = embedder.embed_faces(decoded.pixels, found)
            timings.add("embed", t)
        faces = tuple(
            ProbeFace(index=i, box=f.box, score=f.score, size=f.size) for i, f in enumerate(found)
        )
        return Probe(
            pixels=decoded.pixels, faces=faces, embeddings=embeddings, sha256=sha256_of(data)
        )

    async def probe_photo(self, data: bytes) -> Probe:
        """The probe of an uploaded photo, made on the model pool, outside the lock: for
        the engine calls that take a photo (erasure review, objections, access requests)
        so that their model work does not hold up other requests."""
        return await self.infer(self.probe, data, Timings())

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
        with self._lock:
            self.engine.catch_up()  # a command-line ingest beside the server
            [result] = self.engine.search(
                probe, face=face, top_k=top_k, threshold=threshold, sources=sources, who=who
            )
        return result

    def image(self, image_id: int) -> ImageRecord:
        with self._lock:
            self.engine.catch_up()
            record: ImageRecord = self.engine.show(image_id)
        return record

    def face_image(self, face_id: int) -> ImageRecord:
        with self._lock:
            self.engine.catch_up()
            image_id = self.engine.catalog.faces_to_images([face_id]).get(face_id)
            if image_id is None:
                raise NotFound(f"no face with id {face_id}")
            record: ImageRecord = self.engine.show(image_id)
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
        with self._lock:
            self.engine.catch_up()
            report = self.engine.ingest([item], source=source, workers=1)
            image_id = self.engine.catalog.image_id_by_sha(sha256)
        if image_id is None:
            reason = report.failed[0]["reason"] if report.failed else "unknown reason"
            raise InvalidInput(f"the image could not be ingested: {reason}")
        return report, image_id


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
