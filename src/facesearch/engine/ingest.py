"""Ingesting: photos into a registered source, their faces into the catalog and index."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.domain import IngestBatch, IngestDone, Requester
from facesearch.engine.home import Home
from facesearch.engine.maintenance import Maintenance
from facesearch.errors import ModelMismatch
from facesearch.ingest.analyse import analyse_or_reason
from facesearch.ingest.items import IngestItem, iter_items
from facesearch.ingest.report import IngestReport
from facesearch.ingest.runner import IngestRun, Progress, run_ingest
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
        n_workers = workers or parts.settings.workers
        report = run_ingest(
            run,
            items,
            parts.executor(n_workers),
            parts.settings.faces,
            parts.model_spec,
            analyser=self._analyse_here if n_workers <= 1 else None,
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

    def _analyse_here(self, data: bytes, sha: str) -> Any:
        parts = self.parts
        return analyse_or_reason(
            data, sha, parts.limits, parts.settings.faces, parts.detector, parts.embedder
        )
