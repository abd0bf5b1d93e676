"""Keeping the index in line with the catalog: open, repair, switch, compact, rebuild.

The index adapter owns how (for the local index: exact or approximate files, the lock
that lets a server and a command-line ingest share them, an in-memory copy for encrypted
homes); this module decides when, and how long a write may wait for another process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from facesearch.domain import BoundingBox, DetectedFace, ImageRecord, ModelChanged, Requester
from facesearch.engine.home import Home
from facesearch.errors import InvalidInput
from facesearch.imaging import decode_image
from facesearch.vision.ports import RGBImage

# Images whose files cannot be re-read are listed up to this many in the report.
REEMBED_REPORTED = 20


class Maintenance:
    """The index lifecycle of one home."""

    def __init__(self, parts: Home) -> None:
        self.parts = parts
        # How long an index write waits for another process writing the same home (None:
        # as long as it takes; the server sets a bound and answers 503 past it).
        self.lock_wait: float | None = None
        self.behind = False  # another process was writing the index at the last catch-up

    def open_index(self) -> dict[str, int]:
        """Open the home's index and repair it from the catalog; returns the repairs."""
        return self.parts.index.open()

    def writing(
        self, wait: float | None = None, changes: bool = False
    ) -> AbstractContextManager[None]:
        """Hold the index for writing (other processes may share it); ``changes``: count
        a write even if the index looks the same (others must reload)."""
        return self.parts.index.writing(self.lock_wait if wait is None else wait, changes)

    def catch_up(self) -> bool:
        """See what other processes committed to this home (a command-line ingest beside
        a server) and bring the index in line. Returns False while another process is
        writing the index: this one then keeps searching what it has (erased images are
        never shown: results come from the catalog) and catches up on a later call.
        """
        caught_up = self.parts.index.catch_up()
        self.behind = not caught_up
        return caught_up

    def sync_index(self) -> dict[str, int]:
        """Bring the index in line with the catalog (the truth). Returns what was repaired."""
        return self.parts.index.sync()

    def switch_index(self) -> bool:
        """Switch between exact and approximate search (or retrain) when the size asks."""
        with self.writing():
            return self.parts.index.fit()

    def compact(self) -> dict[str, Any]:
        """Rewrite the index files so that no removed face's vector is left in them."""
        with self.writing(changes=True):
            self.parts.index.compact()
        return self._summary()

    def reindex(
        self, progress: Callable[[int, int], None] | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """Rebuild the index from the catalog's embeddings (``kind``: exact, ann or auto)."""
        with self.writing(changes=True):
            self.parts.index.rebuild(kind, progress)
        return self._summary()

    def reembed(
        self, progress: Callable[[int, int], None] | None = None, who: Requester | None = None
    ) -> dict[str, Any]:
        """Move the home to the configured embedder: re-embed every stored face from its
        image's original file (found by its provenance, checked by its SHA-256), with the
        faces' stored boxes and landmarks, then swap the vectors and the model key in one
        transaction and rebuild the index. The move is audited (``model.change``).

        Resumable: vectors are staged in the catalog image by image, and a new run skips
        the images already done. Until the swap the home keeps its old model (searches
        with it go on). The swap waits until every face has a new vector: images whose
        file is gone or changed are reported, and the home keeps its old model.
        """
        catalog = self.parts.catalog
        target = self.parts.model.key
        before = catalog.model_key()
        report: dict[str, Any] = {"model": target, "previous_model": before}
        if before is None or before == target:
            return {**report, "images": 0, "faces": 0, "switched": False, "unreadable": []}
        todo = catalog.images_to_restage(target)
        unreadable: list[dict[str, Any]] = []
        faces = 0
        for done, image_id in enumerate(todo, start=1):
            record = catalog.get_images([image_id]).get(image_id)
            pixels = self._original(record) if record is not None else None
            if record is not None and pixels is None:
                unreadable.append({"image_id": image_id, "path": record.path})
            elif record is not None and pixels is not None:
                found = self._as_detected(pixels, record)
                vectors = self.parts.embedder.embed_faces(pixels, found)
                catalog.restage(target, [f.id for f in record.faces], vectors)
                faces += len(found)
            if progress is not None:
                progress(done, len(todo))
        report.update(images=len(todo), faces=faces, unreadable=unreadable[:REEMBED_REPORTED])
        if unreadable:
            return {**report, "switched": False, "unreadable_count": len(unreadable)}
        with self.writing(changes=True):
            try:
                catalog.swap_restaged(target)
            except InvalidInput:  # an ingest added faces meanwhile: a new run takes them
                return {**report, "switched": False}
            self.parts.index.rebuild(None, None)
        total_images, total_faces = catalog.stats().get("images", 0), catalog.face_state()[0]
        self.parts.record(
            ModelChanged(
                previous_model=before, model=target, images=total_images, faces=total_faces
            ),
            who,
        )
        return {**report, "switched": True}

    def _as_detected(self, pixels: RGBImage, record: ImageRecord) -> list[DetectedFace]:
        """The stored faces as the home's detector finds them again in the same pixels:
        its landmarks and five points (the catalog keeps neither exactly: landmarks are
        rounded, five points not kept), so a re-embedded face is aligned as a newly
        ingested one would be. A stored face the detector no longer finds keeps its
        stored landmarks."""
        fresh = self.parts.detector.detect_faces(pixels)
        out = []
        for face in record.faces:
            match = max(fresh, key=lambda d: _overlap(d.box, face.box), default=None)
            if match is not None and _overlap(match.box, face.box) >= 0.5:
                landmarks, five = match.landmarks, match.five_points
            else:
                landmarks, five = face.landmarks, None
            out.append(
                DetectedFace(
                    box=face.box,
                    score=face.score,
                    landmarks=landmarks,
                    sharpness=face.sharpness,
                    five_points=five,
                )
            )
        return out

    def _original(self, record: ImageRecord) -> RGBImage | None:
        """The pixels of the image's original file, from the first copy still as stored."""
        for copy in record.provenance:
            try:
                data = Path(copy.path).read_bytes()
            except OSError:
                continue
            if hashlib.sha256(data).hexdigest() != record.sha256:
                continue
            try:
                return decode_image(data, self.parts.limits).pixels
            except InvalidInput:
                continue
        return None

    def _summary(self) -> dict[str, Any]:
        return {"kind": self.parts.index.kind, "faces": self.parts.index.state().count}


def _overlap(a: BoundingBox, b: BoundingBox) -> float:
    """Intersection over union of two boxes."""
    width = min(a.x2, b.x2) - max(a.x1, b.x1)
    height = min(a.y2, b.y2) - max(a.y1, b.y1)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.area + b.area - inter)
