"""Model work for a server: decode, detect and embed on a bounded pool of threads.

Each thread has its own models (dlib releases the GIL, and its networks keep per-call
state, so threads must not share one), built from the engine's model spec, so a slow
upload never blocks the event loop or other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from facesearch.domain import ProbeFace
from facesearch.engine import Probe
from facesearch.imaging import DecodeLimits, decode_image
from facesearch.ingest.analyse import sha256_of
from facesearch.vision.ports import FaceDetector, FaceEmbedder
from facesearch.vision.registry import ModelSpec

T = TypeVar("T")
Models = Callable[[], tuple[FaceDetector, FaceEmbedder]]


@dataclass
class Timings:
    """Milliseconds per stage of one request."""

    stages: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.stages[stage] = round(self.stages.get(stage, 0.0) + (now - since) * 1000, 3)
        return now


class ModelPool:
    """``workers`` threads for model work; ``models`` builds one thread's models (default:
    from ``spec``, the ones the engine's model key names)."""

    def __init__(
        self,
        spec: ModelSpec,
        limits: DecodeLimits,
        workers: int,
        models: Models | None = None,
    ) -> None:
        self.spec = spec
        self.limits = limits
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._local = threading.local()
        self._models = models or self._spec_models
        # Models given to the engine are one object for every thread: one call at a time.
        self._shared = threading.Lock() if models is None and spec.shared else None

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
        return self.spec.build_detector(), self.spec.build_embedder()

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

    def probe(self, data: bytes, timings: Timings) -> Probe:
        """Decode, detect and embed, like FaceSearch.probe, timing each stage."""
        detector, embedder = self._thread_models()
        t = time.perf_counter()
        decoded = decode_image(data, self.limits)
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
        """The probe of an uploaded photo, made on the pool: for the engine calls that
        take a photo (erasure review, objections, access requests), so that their model
        work does not hold up other requests."""
        return await self.infer(self.probe, data, Timings())
