"""Ingesting: photos into a registered source, their faces into the catalog and index."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from facesearch.domain import IngestBatch, IngestDone, Requester
from facesearch.engine.home import Home
from facesearch.engine.maintenance import Maintenance
from facesearch.errors import InvalidInput, ModelMismatch
from facesearch.ingest.analyse import Analysis, analyse_batch, sha256_of
from facesearch.ingest.items import VIDEO_SUFFIXES, IngestItem, iter_items
from facesearch.ingest.report import IngestReport
from facesearch.ingest.runner import IngestRun, Progress, run_ingest
from facesearch.ingest.video import VideoRules, frame_jpeg, scan_video
from facesearch.parts import home_detector
from facesearch.vision.registry import DETECTOR_META


class Ingester:
    """Add photos to a home, holding its index lock (``maintenance``) while it writes."""

    def __init__(self, parts: Home, maintenance: Maintenance) -> None:
        self.parts = parts
        self.maintenance = maintenance

    def ingest(
        self,
        paths: Sequence[str | Path] | Sequence[IngestItem],
        source: str,
        workers: int | None = None,
        progress: Progress | None = None,
        who: Requester | None = None,
    ) -> IngestReport:
        """Ingest folders, files and manifests (or prepared items) into a registered source."""
        with self.maintenance.writing():
            return self._ingest(paths, source, workers, progress, who)

    def _ingest(
        self,
        paths: Sequence[str | Path] | Sequence[IngestItem],
        source: str,
        workers: int | None,
        progress: Progress | None,
        who: Requester | None,
    ) -> IngestReport:
        parts = self.parts
        parts.source(source)  # refuses an unregistered source before any work
        items = [p for p in paths if isinstance(p, IngestItem)]
        items += iter_items([p for p in paths if not isinstance(p, IngestItem)])
        self.check_model()
        videos = [i for i in items if i.problem is None and i.path.suffix.lower() in VIDEO_SUFFIXES]
        items = [i for i in items if i not in videos]
        run = IngestRun(
            parts.catalog,
            parts.index,
            source,
            parts.limits,
            progress,
            self._suppressor(),
            # Before each batch is written: no image is ever stored without an entry.
            audit=lambda batch: parts.record(
                IngestBatch(source=source, images=batch["images"], copies=batch["copies"]), who
            ),
        )
        for video in videos:  # frames of appearances: then ingested like photos
            items += self._video_frames(video, run)
        n_workers = workers or parts.settings.workers
        report = run_ingest(
            run,
            items,
            parts.executor(n_workers),
            parts.settings.faces,
            parts.model_spec,
            analyser=self._analyse_here if n_workers <= 1 else None,
            workers=n_workers,
        )
        done = IngestDone(
            source=source,
            files=report.files,
            images_added=report.images_added,
            copies_added=report.copies_added,
            faces_indexed=report.faces_indexed,
            faces_suppressed=report.faces_suppressed,
            failures=len(report.failed),
            interrupted=report.interrupted,
        )
        parts.record(done, who)
        self.maintenance.switch_index()
        return report

    def _video_frames(self, item: IngestItem, run: IngestRun) -> list[IngestItem]:
        """Scan a video (``ingest.video``) and write the frame of each appearance into
        ``uploads/`` (named by content: erasure finds it by hash); a video that cannot be
        used is a failure with its reason, like a bad photo."""
        parts, report = self.parts, run.report
        report.files += 1
        settings = parts.settings
        rules = VideoRules(
            sample_fps=settings.video.sample_fps,
            max_seconds=settings.video.max_seconds,
            max_frames=settings.video.max_frames,
            max_decode_seconds=settings.video.max_decode_seconds,
            seconds_per_face=settings.video.seconds_per_face,
            track_similarity=settings.video.track_similarity,
            max_pixels=parts.limits.max_pixels,
            min_face=settings.faces.min_size,
        )
        try:
            scan = scan_video(item.path, rules, parts.detector, parts.embedder)
        except InvalidInput as exc:
            run.fail(item, str(exc))
            return []
        except Exception as exc:  # a decoder can trip over anything: one file, one failure
            run.fail(item, f"cannot analyse video: {type(exc).__name__}: {exc}")
            return []
        report.videos += 1
        report.video_seconds += scan.duration
        report.video_frames_decoded += scan.frames_decoded
        report.video_frames_analysed += scan.frames_sampled
        report.video_faces_detected += scan.faces_detected
        report.video_faces_kept += len(scan.appearances)
        uploads = parts.home / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        frames: list[IngestItem] = []
        for moment in sorted({a.time for a in scan.appearances}):
            frame = next(a.frame for a in scan.appearances if a.time == moment)
            data = frame_jpeg(frame)
            # Named by content first (erasure finds it by hash), then as people know it.
            stem = re.sub(r"^[0-9a-f]{64}-", "", item.path.stem)[:60]
            name = f"{sha256_of(data)}-{stem}-t{int(moment * 1000)}ms.jpg"
            path = uploads / name
            if not path.exists():
                path.write_bytes(data)
            frames.append(
                replace(
                    item,
                    path=path,
                    origin=f"{item.path.name} at {moment:.1f} s",
                    video=str(item.path),
                    video_time=round(moment, 3),
                )
            )
        return frames

    def check_model(self) -> None:
        """Record the configured model and detector in a new home; refuse another model's
        home, or faces found by another detector than the home's (one home, one way of
        finding faces: counts, sizes and false faces stay comparable across its images)."""
        parts = self.parts
        stored = parts.catalog.model_key()
        detector = parts.model_spec.detector_name
        if stored is None:
            parts.catalog.set_model_key(parts.model.key)
            parts.catalog.set_meta(DETECTOR_META, detector)
            if parts.index.state().count == 0:
                parts.index.reset(parts.model.key)
            return
        if stored != parts.model.key:
            raise ModelMismatch(
                f"this home holds embeddings of model {stored}, but the configured model is "
                f"{parts.model.key}; use the same model, a new --home, or move this home to it "
                "with `facesearch reindex --re-embed`"
            )
        recorded = home_detector(parts.catalog)
        if recorded != detector:
            raise ModelMismatch(
                f"this home's faces were found by the {recorded} detector, but the configured "
                f"detector is {detector}; set faces.detector = {recorded!r} for this home "
                "(or leave it unset: a home keeps its own), or use a new --home"
            )

    def _suppressor(self) -> Callable[[np.ndarray], np.ndarray] | None:
        suppressions = self.parts.suppressions
        if suppressions.count() == 0:
            return None
        model, strict = self.parts.model.key, self.parts.settings.governance.strict_threshold
        return lambda vectors: suppressions.matches(vectors, model, strict)

    def _analyse_here(self, files: Sequence[tuple[bytes, str]]) -> list[Analysis | str]:
        parts = self.parts
        return analyse_batch(
            files, parts.limits, parts.settings.faces, parts.detector, parts.embedder
        )
