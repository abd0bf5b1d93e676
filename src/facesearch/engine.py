"""FaceSearch: the engine behind the CLI and the API.

It builds the parts from Settings (catalog, index, models), keeps the index consistent
with the catalog, and offers one method per job: ingest, search, show, stats, reindex.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.catalog.sqlite import SqliteCatalog
from facesearch.config import Settings
from facesearch.domain import Match, ModelId, ProbeFace, SearchResult
from facesearch.errors import InvalidInput, ModelMismatch, NoFaceFound, NotFound
from facesearch.imaging import DecodeLimits, decode_image, read_limited
from facesearch.index import factory
from facesearch.index.ports import VectorIndex
from facesearch.ingest.analyse import analyse, sha256_of
from facesearch.ingest.items import IngestItem, iter_items
from facesearch.ingest.report import IngestReport
from facesearch.ingest.runner import IngestRun, Progress, run_ingest
from facesearch.vision.ports import Embeddings, FaceDetector, FaceEmbedder, RGBImage

# Search asks the index for this many candidates per requested row, because several
# faces of one image collapse into a single row.
OVERFETCH = 3


@dataclass(frozen=True, slots=True)
class Probe:
    """A decoded probe photo and the faces found in it."""

    pixels: RGBImage
    faces: tuple[ProbeFace, ...]
    embeddings: Embeddings
    sha256: str


class FaceSearch:
    """Ingest photos, then find the photos that show the same person as a probe."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        detector: FaceDetector | None = None,
        embedder: FaceEmbedder | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.home = Path(self.settings.home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.limits = DecodeLimits(
            max_bytes=self.settings.limits.max_bytes, max_pixels=self.settings.limits.max_pixels
        )
        self.catalog = SqliteCatalog(self.home / "catalog.sqlite")
        self.index: VectorIndex = factory.open_index(self.home, self.settings, self.catalog)
        self._detector = detector
        self._embedder = embedder
        self.repaired = self.sync_index()

    # -- parts, loaded when first needed (stats and show need no model) ------------------
    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            from facesearch.vision.dlib_models import DlibFaceDetector

            self._detector = DlibFaceDetector(upsample=self.settings.faces.upsample)
        return self._detector

    @property
    def embedder(self) -> FaceEmbedder:
        if self._embedder is None:
            from facesearch.vision.dlib_models import DlibFaceEmbedder

            self._embedder = DlibFaceEmbedder(flip_average=self.settings.faces.flip_average)
        return self._embedder

    @property
    def model(self) -> ModelId:
        """The model of the configured embedder (loads it)."""
        return self.embedder.model

    def close(self) -> None:
        self.index.close()
        self.catalog.close()

    def __enter__(self) -> FaceSearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- consistency -------------------------------------------------------------------
    def sync_index(self) -> dict[str, int]:
        """Bring the index in line with the catalog (the truth). Returns what was repaired."""
        count, id_sum = self.catalog.face_state()
        state = self.index.state()
        if state.count == count and state.id_sum == id_sum:
            return {}
        catalog_ids = self.catalog.face_ids()
        held = self.index.ids()
        extra = np.setdiff1d(held, catalog_ids)
        missing = np.setdiff1d(catalog_ids, held)
        removed = self.index.remove(extra.tolist()) if len(extra) else 0
        for start in range(0, len(missing), 10_000):
            chunk = missing[start : start + 10_000]
            self.index.add(chunk, self.catalog.embeddings(chunk.tolist()))
        return {"added": len(missing), "removed": removed}

    def switch_index(self) -> bool:
        """Switch between exact and approximate search (or retrain) when the size asks."""
        count = self.catalog.face_state()[0]
        kind = factory.wanted_kind(self.settings, self.home, count, self.index.kind)
        if kind == self.index.kind and not factory.outgrown(self.index, count):
            return False
        self.index.close()
        self.index = factory.build_index(kind, self.home, self.settings, self.catalog)
        return True

    def compact(self) -> dict[str, Any]:
        """Rewrite the index files so that no removed face's vector is left in them."""
        self.index.compact()
        return {"kind": self.index.kind, "faces": self.index.state().count}

    def reindex(
        self, progress: Callable[[int, int], None] | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """Rebuild the index from the catalog's embeddings (``kind``: exact, ann or auto)."""
        if kind is not None:
            factory.force_kind(self.home, kind)
        count = self.catalog.face_state()[0]
        wanted = factory.wanted_kind(self.settings, self.home, count, self.index.kind)
        self.index.close()
        self.index = factory.build_index(wanted, self.home, self.settings, self.catalog, progress)
        return {"kind": self.index.kind, "faces": self.index.state().count}

    # -- ingest ------------------------------------------------------------------------
    def _check_model(self) -> None:
        stored = self.catalog.model_key()
        if stored is None:
            self.catalog.set_model_key(self.model.key)
            if self.index.state().count == 0:
                self.index.reset(self.model.key)
        elif stored != self.model.key:
            raise ModelMismatch(
                f"this home holds embeddings of model {stored}, but the configured model is "
                f"{self.model.key}; use the same model, or a new --home"
            )

    def ingest(
        self,
        paths: Sequence[str | Path] | Sequence[IngestItem],
        source: str = "default",
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest folders, files and manifests (or prepared items) into ``source``."""
        if not source.strip():
            raise InvalidInput("a source name must not be empty")
        items = [p for p in paths if isinstance(p, IngestItem)]
        items += iter_items([p for p in paths if not isinstance(p, IngestItem)])
        self._check_model()
        run = IngestRun(self.catalog, self.index, source, self.limits, progress)
        n_workers = workers or self.settings.workers
        report = run_ingest(
            run,
            items,
            n_workers,
            self.settings.faces,
            analyser=self._analyse_here if n_workers <= 1 else None,
        )
        self.switch_index()
        return report

    def _analyse_here(self, data: bytes, sha: str) -> Any:
        try:
            return analyse(
                data, sha, self.limits, self.settings.faces, self.detector, self.embedder
            )
        except InvalidInput as exc:
            return str(exc)

    # -- search ------------------------------------------------------------------------
    def probe(self, photo: bytes | str | Path) -> Probe:
        """Decode a probe photo and embed every face in it (largest first)."""
        data = read_limited(str(photo), self.limits) if isinstance(photo, (str, Path)) else photo
        decoded = decode_image(data, self.limits)
        found = self.detector.detect_faces(decoded.pixels)
        faces = tuple(
            ProbeFace(index=i, box=f.box, score=f.score, size=f.size) for i, f in enumerate(found)
        )
        embeddings = self.embedder.embed_faces(decoded.pixels, found)
        return Probe(
            pixels=decoded.pixels, faces=faces, embeddings=embeddings, sha256=sha256_of(data)
        )

    def search(
        self,
        photo: bytes | str | Path | Probe,
        *,
        face: int | None = None,
        all_faces: bool = False,
        top_k: int | None = None,
        threshold: float | None = None,
        sources: Sequence[str] | None = None,
    ) -> list[SearchResult]:
        """Rank stored images by how closely their faces match the probe's face(s)."""
        probe = photo if isinstance(photo, Probe) else self.probe(photo)
        if not probe.faces:
            raise NoFaceFound("no face found in the probe photo")
        if face is not None and not 0 <= face < len(probe.faces):
            raise InvalidInput(
                f"face {face} does not exist: the probe has {len(probe.faces)} face(s), "
                f"numbered 0 to {len(probe.faces) - 1}"
            )
        chosen = range(len(probe.faces)) if all_faces else [face or 0]
        return [
            self.search_vector(
                probe.embeddings[i],
                probe_face=probe.faces[i],
                top_k=top_k,
                threshold=threshold,
                sources=sources,
                probe_faces=probe.faces,
            )
            for i in chosen
        ]

    def search_vector(
        self,
        vector: np.ndarray,
        *,
        probe_face: ProbeFace,
        top_k: int | None = None,
        threshold: float | None = None,
        sources: Sequence[str] | None = None,
        probe_faces: tuple[ProbeFace, ...] = (),
    ) -> SearchResult:
        """Search one embedding; results collapse to one row per image (its best face)."""
        k = top_k if top_k is not None else self.settings.search.top_k
        if k <= 0:
            raise InvalidInput("top_k must be a positive number")
        cut = self.settings.search.threshold if threshold is None else threshold
        if not -1.0 <= cut <= 1.0:
            raise InvalidInput("threshold must be between -1 and 1 (a cosine similarity)")
        stored = self.catalog.model_key()
        if stored is not None and stored != self.model.key:
            raise ModelMismatch(
                f"the stored faces were embedded with {stored}; this search uses "
                f"{self.model.key}. Search with the same model or reindex with it."
            )
        allowed = self.catalog.face_ids(sources) if sources else None
        ids, sims = self.index.search(vector[None, :], k * OVERFETCH, allowed)
        hits = [(int(i), float(s)) for i, s in zip(ids[0], sims[0], strict=True) if i >= 0]
        face_to_image = self.catalog.faces_to_images([i for i, _ in hits])
        best: dict[int, tuple[int, float]] = {}
        for face_id, sim in hits:
            image_id = face_to_image.get(face_id)
            if image_id is not None and image_id not in best:
                best[image_id] = (face_id, sim)
        ranked = list(best.items())[:k]
        images = self.catalog.get_images([i for i, _ in ranked])
        matches = []
        for rank, (image_id, (face_id, sim)) in enumerate(ranked, start=1):
            image = images[image_id]
            box = next(f.box for f in image.faces if f.id == face_id)
            matches.append(
                Match(
                    rank=rank,
                    similarity=sim,
                    is_match=sim >= cut,
                    face_id=face_id,
                    box=box,
                    image=image,
                )
            )
        return SearchResult(
            probe_face=probe_face,
            threshold=cut,
            matches=tuple(matches),
            model=self.model,
            probe_faces=probe_faces,
        )

    # -- reads -------------------------------------------------------------------------
    def show(self, image_id: int) -> Any:
        image = self.catalog.get_images([image_id]).get(image_id)
        if image is None:
            raise NotFound(f"no image with id {image_id}")
        return image

    def stats(self) -> dict[str, Any]:
        stats = self.catalog.stats()
        state = self.index.state()
        count, id_sum = self.catalog.face_state()
        stats["model"] = self.catalog.model_key()
        stats["index"] = {
            "kind": state.kind,
            "faces": state.count,
            "consistent": state.count == count and state.id_sum == id_sum,
        }
        stats["home"] = str(self.home)
        return stats

    # -- calibration -------------------------------------------------------------------
    def evaluate(
        self,
        pairs_csv: str | Path,
        root: str | Path,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Verification metrics on labelled pairs of photos under ``root``."""
        from facesearch.evaluation import read_pairs, verification_report

        pairs = read_pairs(Path(pairs_csv))
        paths = sorted({p for pair in pairs for p in (pair.path_a, pair.path_b)})
        vectors: dict[str, np.ndarray | None] = {}
        unreadable: list[dict[str, str]] = []
        for n, rel in enumerate(paths, start=1):
            try:
                probe = self.probe(Path(root) / rel)
                vectors[rel] = probe.embeddings[0] if probe.faces else None
            except InvalidInput as exc:
                vectors[rel] = None
                unreadable.append({"path": rel, "reason": str(exc)})
            if progress:
                progress(n, len(paths))
        scores = np.array(
            [
                float(va @ vb)
                if (va := vectors[p.path_a]) is not None and (vb := vectors[p.path_b]) is not None
                else -1.0  # no face: the pair cannot be accepted
                for p in pairs
            ]
        )
        labels = np.array([p.same for p in pairs])
        report = verification_report(
            scores, labels, [p.fold for p in pairs], self.settings.search.threshold
        )
        report["images"] = len(paths)
        report["images_without_face"] = sorted(p for p, v in vectors.items() if v is None)
        report["unreadable"] = unreadable
        report["model"] = self.model.key
        return report
