"""Runs an ingest: reads files, has an executor analyse them, writes audit, catalog, index.

Analysed images (and new copies of stored ones) are written in batches. Order of writes,
per batch: first an audit entry naming the batch's images by SHA-256 (the audit log is
another file, so it cannot share the catalog's transaction: writing it first means no
image can be in the catalog without an entry that covers it); then the catalog commits
each image with its faces and embeddings (one transaction each); then the index receives
the vectors. A crash after the audit entry leaves an entry naming images that are not
stored (the next run stores them, under an entry of its own); a crash after the catalog
leaves the index behind, which the engine repairs on the next open. So an image reported
as done is never lost, never stored twice and never stored unaudited.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from facesearch.catalog.ports import Catalog, FileStamp, NewImage
from facesearch.config import Faces
from facesearch.domain import Provenance
from facesearch.errors import InvalidInput
from facesearch.execution.local import IN_FLIGHT_PER_WORKER
from facesearch.execution.ports import Executor
from facesearch.governance.retention import expired_at_ingest, stamp
from facesearch.imaging import DecodeLimits, read_limited
from facesearch.index.ports import VectorIndex
from facesearch.ingest.analyse import Analysis, analyse_in_worker, init_worker, sha256_of
from facesearch.ingest.items import IngestItem
from facesearch.ingest.report import IngestReport
from facesearch.vision.registry import ModelSpec

Progress = Callable[[IngestReport, int], None]  # (report so far, files done)
Suppressor = Callable[[np.ndarray], np.ndarray]  # embeddings -> which match an objection
Analyser = Callable[[Sequence[tuple[bytes, str]]], "list[Analysis | str]"]
Auditor = Callable[[dict[str, Any]], None]  # records a batch before it is written

# A batch is written when it holds this many images or faces, or is this old.
BATCH_IMAGES = 64
INDEX_FLUSH_FACES = 256
INDEX_FLUSH_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Pending:
    item: IngestItem
    stamp: FileStamp
    data: bytes
    sha256: str


class IngestRun:
    def __init__(
        self,
        catalog: Catalog,
        index: VectorIndex,
        source: str,
        limits: DecodeLimits,
        progress: Progress | None = None,
        suppressed: Suppressor | None = None,
        audit: Auditor | None = None,
    ) -> None:
        self.catalog = catalog
        self.index = index
        self.source = source
        self.limits = limits
        self.progress = progress
        self.suppressed = suppressed
        self.audit = audit
        self.report = IngestReport(source=source)
        self.done = 0
        self._images: list[tuple[Pending, Analysis]] = []
        self._copies: list[tuple[int, Pending]] = []
        self._faces = 0
        self._last_flush = time.monotonic()
        self.retention_days: int | None = None
        self._read_retention()

    def _read_retention(self) -> None:
        """The source's period, read again before each batch: a change made while the
        run goes on (which rewrites the dates already stored) applies to what follows."""
        known = self.catalog.get_source(self.source, counts=False)
        self.retention_days = known.retention_days if known is not None else None

    # -- stage 1: decide whether a file needs analysis at all -----------------------------
    def prepare(self, item: IngestItem) -> Pending | None:
        path = str(item.path)
        if item.problem is not None:  # a manifest row that cannot be used: report, go on
            self._fail(item, item.problem)
            return None
        refused = self._refused(item)
        if refused is not None:
            self._fail(item, refused)
            return None
        try:
            st = os.stat(item.path)
            stamp = FileStamp(size=st.st_size, mtime_ns=st.st_mtime_ns)
            if self.catalog.seen_file(self.source, path, stamp):
                self.report.unchanged += 1
                self._tick()
                return None
            data = read_limited(path, self.limits)
        except (OSError, InvalidInput) as exc:
            self._fail(item, str(exc) if isinstance(exc, InvalidInput) else exc.strerror or "")
            return None
        sha = sha256_of(data)
        known = self.catalog.image_id_by_sha(sha)
        pending = Pending(item=item, stamp=stamp, data=data, sha256=sha)
        if known is not None:
            self._copies.append((known, replace(pending, data=b"")))
            self._tick()
            self._flush_if_due()
            return None
        return pending

    def _refused(self, item: IngestItem) -> str | None:
        """Why this copy may not be stored whatever the file holds: already past its
        source's retention (the next retention run would remove it unannounced)."""
        if self.retention_days is None:
            return None
        try:
            return expired_at_ingest(item.captured_at, self.retention_days)
        except InvalidInput as exc:
            return f"captured_at: {exc}"

    # -- stage 3: write what analysis found ---------------------------------------------
    def commit(self, pending: Pending, result: Analysis | str) -> None:
        if isinstance(result, str):
            self._fail(pending.item, result)
            return
        result = self._drop_suppressed(result)
        self._images.append((replace(pending, data=b""), result))
        self._faces += len(result.faces)
        self._tick()
        self._flush_if_due()

    def _flush_if_due(self) -> None:
        if (
            len(self._images) + len(self._copies) >= BATCH_IMAGES
            or self._faces >= INDEX_FLUSH_FACES
            or time.monotonic() - self._last_flush > INDEX_FLUSH_SECONDS
        ):
            self.flush()

    def _write(
        self, pending: Pending, result: Analysis
    ) -> tuple[list[int], np.ndarray | None, int | None]:
        """Commit one analysed image; its new face ids and embeddings, for the index, or
        the id of the image it turned out to be a copy of."""
        path = str(pending.item.path)
        image = NewImage(
            sha256=result.sha256,
            width=result.width,
            height=result.height,
            format=result.format,
            bytes=result.bytes,
            faces=result.faces,
            embeddings=result.embeddings,
            skipped_faces=result.skipped,
            phash=result.phash,
        )
        image_id, face_ids, new = self.catalog.add_image(
            image, self._provenance(pending.item), pending.stamp
        )
        if not new:  # the same content finished in another worker first
            self.report.copies_added += 1
            return [], None, image_id
        self.report.images_added += 1
        self.report.faces_indexed += len(face_ids)
        self.report.faces_skipped += len(result.skipped)
        self.report.skipped_faces.extend({"path": path, **s} for s in result.skipped)
        if not result.faces:
            self.report.images_without_faces += 1
        return face_ids, result.embeddings if face_ids else None, None

    def _drop_suppressed(self, result: Analysis) -> Analysis:
        """Faces of people who objected are never stored: skipped, with the reason."""
        if self.suppressed is None or not result.faces:
            return result
        hit = self.suppressed(result.embeddings)
        if not hit.any():
            return result
        self.report.faces_suppressed += int(hit.sum())
        return replace(
            result,
            faces=[f for f, h in zip(result.faces, hit, strict=True) if not h],
            embeddings=result.embeddings[~hit],
            skipped=[
                *result.skipped,
                *(
                    {"box": f.box.as_dict(), "reason": "suppressed (objection on file)"}
                    for f, h in zip(result.faces, hit, strict=True)
                    if h
                ),
            ],
        )

    def flush(self) -> None:
        """Write the batch: its audit entry, then the catalog, then the index."""
        images, copies = self._images, self._copies
        self._images, self._copies, self._faces = [], [], 0
        self._last_flush = time.monotonic()
        if not (images or copies):
            return
        self._read_retention()
        if self.audit is not None:
            self.audit(
                {
                    "images": [p.sha256 for p, _ in images],
                    "copies": [p.sha256 for _, p in copies],
                }
            )
        copied: list[int] = []  # images that gained a copy: their faces' labels change
        for image_id, pending in copies:
            if self.catalog.add_provenance(image_id, self._provenance(pending.item), pending.stamp):
                self.report.copies_added += 1
                copied.append(image_id)
            else:
                self.report.unchanged += 1
        ids: list[int] = []
        vectors: list[np.ndarray] = []
        for pending, result in images:
            face_ids, embeddings, copy_of = self._write(pending, result)
            if embeddings is not None:
                ids.extend(face_ids)
                vectors.append(embeddings)
            elif copy_of is not None:
                copied.append(copy_of)
        if ids:
            self.index.add(np.asarray(ids, dtype=np.int64), np.concatenate(vectors))
        relabel = getattr(self.index, "relabel", None)
        if copied and callable(relabel):  # an index that filters on sources (Milvus)
            records = self.catalog.get_images(sorted(set(copied)))
            relabel([f.id for image in records.values() for f in image.faces])
        if self.progress is not None:  # the counts moved when the batch was written
            self.progress(self.report, self.done)

    def _provenance(self, item: IngestItem) -> Provenance:
        """The copy with its ingest and expiry dates (none for an unregistered source,
        which the catalog refuses)."""
        copy = Provenance(
            source=self.source,
            path=str(item.path),
            source_url=item.source_url,
            page_url=item.page_url,
            captured_at=item.captured_at,
            video=item.video,
            video_time=item.video_time,
        )
        return copy if self.retention_days is None else stamp(copy, self.retention_days)

    def fail(self, item: IngestItem, reason: str) -> None:
        """Record that ``item`` cannot be used (a video the engine scanned first)."""
        self._fail(item, reason)

    def _fail(self, item: IngestItem, reason: str) -> None:
        path = str(item.path)
        if item.origin:  # the manifest row it came from, to fix it there
            reason = f"{item.origin}: {reason}"
        self.catalog.record_failure(self.source, path, reason)
        self.report.failed.append({"path": path, "reason": reason})
        self._tick()

    def _tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.report, self.done)


def job_size(files: int, batch_images: int, workers: int) -> int:
    """Images per job: up to ``batch_images`` (their faces embedded in one batch), fewer
    when that would leave workers idle (a few files shared between the workers)."""
    spread = -(-files // max(1, workers * IN_FLIGHT_PER_WORKER))
    return max(1, min(batch_images, spread))


def _jobs(
    pendings: Iterable[Pending], size: int
) -> Iterator[tuple[list[Pending], tuple[list[tuple[bytes, str]]]]]:
    """The files to analyse in groups of ``size``: (their pendings, the worker's argument)."""
    it = iter(pendings)
    while group := list(itertools.islice(it, size)):
        yield group, ([(p.data, p.sha256) for p in group],)


def run_ingest(
    run: IngestRun,
    items: Sequence[IngestItem],
    executor: Executor,
    rules: Faces,
    models: ModelSpec,
    analyser: Analyser | None = None,
    workers: int = 1,
) -> IngestReport:
    """Ingest items, analysed by ``executor``: in this process through ``analyser`` (the
    caller's loaded models) when the executor runs jobs here, else in its workers, each
    building its models from ``models``. A job is a group of files (``job_size``)."""
    started = time.monotonic()
    run.report.files += len(items)  # videos scanned before count themselves
    prepared = (pending for item in items if (pending := run.prepare(item)) is not None)
    jobs = _jobs(prepared, job_size(len(items), rules.batch_images, workers))
    try:
        if executor.in_process and analyser is not None:
            results = executor.map_unordered(analyser, jobs)
        else:
            # The workers never touch the caller's catalog; with fork they inherit the
            # initializer's arguments (models given to the engine included), otherwise
            # those are pickled, which a given model may refuse: then refuse the ingest.
            if executor.copies_by_pickle:
                models.check_picklable()
            results = executor.map_unordered(
                analyse_in_worker,
                jobs,
                initializer=init_worker,
                initargs=(run.limits, rules, models),
            )
        with closing(results):
            for pendings, analyses in results:
                for pending, result in zip(pendings, analyses, strict=True):
                    run.commit(pending, result)
    except KeyboardInterrupt:
        run.report.interrupted = True
    finally:
        run.flush()
        run.report.seconds = time.monotonic() - started
    return run.report
