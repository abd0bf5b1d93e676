"""Searching: probe photos, ranked matches, the requester's checks, and the reads
(show, list, stats, evaluate) that answer from the catalog."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.domain import (
    ImageRecord,
    Match,
    ProbeFace,
    Requester,
    SearchEvent,
    SearchMade,
    SearchResult,
)
from facesearch.engine.home import Home
from facesearch.errors import InvalidInput, ModelMismatch, NoFaceFound, NotFound, PermissionDenied
from facesearch.imaging import decode_image, read_limited
from facesearch.ingest.analyse import sha256_of
from facesearch.parts import home_detector
from facesearch.vision.ports import Embeddings, RGBImage

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


class Searcher:
    """Find the photos that show the same person as a probe."""

    def __init__(self, parts: Home) -> None:
        self.parts = parts

    def probe(self, photo: bytes | str | Path | Probe) -> Probe:
        """Decode a probe photo and embed every face in it (largest first); a Probe made
        already (by the server's model pool) is returned as it is."""
        if isinstance(photo, Probe):
            return photo
        limits = self.parts.limits
        data = read_limited(str(photo), limits) if isinstance(photo, (str, Path)) else photo
        decoded = decode_image(data, limits)
        found = self.parts.detector.detect_faces(decoded.pixels)
        faces = tuple(
            ProbeFace(index=i, box=f.box, score=f.score, size=f.size) for i, f in enumerate(found)
        )
        embeddings = self.parts.embedder.embed_faces(decoded.pixels, found)
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
        who: Requester | None = None,
    ) -> list[SearchResult]:
        """Rank stored images by how closely their faces match the probe's face(s)."""
        who = who or self.parts.default_requester()
        self.check_requester(who)
        probe = self.probe(photo)
        first = chosen_face(probe, face)
        chosen = range(len(probe.faces)) if all_faces else [first]
        return [
            self.search_vector(
                probe.embeddings[i],
                probe_face=probe.faces[i],
                top_k=top_k,
                threshold=threshold,
                sources=sources,
                probe_faces=probe.faces,
                who=who,
                probe_sha256=probe.sha256,
            )
            for i in chosen
        ]

    def check_requester(self, who: Requester) -> None:
        """Refuse a search this deployment's rules refuse (no purpose, a blocked place)."""
        rules = self.parts.settings.governance
        required = rules.api_require_purpose if who.channel == "api" else rules.require_purpose
        if required and not ((who.purpose or "").strip() and (who.case_ref or "").strip()):
            raise InvalidInput(
                "every search needs a purpose and a case reference (purpose, case_ref)"
            )
        blocked = {j.upper() for j in rules.blocked_jurisdictions}
        if blocked and (who.jurisdiction or "").upper() in blocked:
            raise PermissionDenied(
                f"searches from requesters in {who.jurisdiction} are blocked by this deployment"
            )

    def search_vector(
        self,
        vector: np.ndarray,
        *,
        probe_face: ProbeFace,
        top_k: int | None = None,
        threshold: float | None = None,
        sources: Sequence[str] | None = None,
        probe_faces: tuple[ProbeFace, ...] = (),
        who: Requester | None = None,
        probe_sha256: str | None = None,
        audit: type[SearchEvent] | None = SearchMade,
        include_suppressed: bool = False,
    ) -> SearchResult:
        """Search one embedding; results collapse to one row per image (its best face).

        Faces of people on the suppression list are never returned, except to the access
        and erasure requests of those people (``include_suppressed``). Every call is
        written to the audit log as an ``audit`` event (None: the caller records its own).
        """
        parts = self.parts
        settings, catalog = parts.settings, parts.catalog
        k = top_k if top_k is not None else settings.search.top_k
        if k <= 0:
            raise InvalidInput("top_k must be a positive number")
        cut = settings.search.threshold if threshold is None else threshold
        if not -1.0 <= cut <= 1.0:
            raise InvalidInput("threshold must be between -1 and 1 (a cosine similarity)")
        stored = catalog.model_key()
        if stored is not None and stored != parts.model.key:
            raise ModelMismatch(
                f"the stored faces were embedded with {stored}; this search uses "
                f"{parts.model.key}. Search with the same model or reindex with it."
            )
        for name in sources or ():
            parts.source(name)  # a mistyped source is an error, not an empty answer
        allowed = catalog.face_ids(sources) if sources else None
        ids, sims = parts.index.search(vector[None, :], k * OVERFETCH, allowed)
        hits = [(int(i), float(s)) for i, s in zip(ids[0], sims[0], strict=True) if i >= 0]
        if hits and not include_suppressed and parts.suppressions.count():
            vectors = catalog.embeddings([i for i, _ in hits])
            hidden = parts.suppressions.matches(
                vectors, parts.model.key, settings.governance.strict_threshold
            )
            hits = [h for h, hide in zip(hits, hidden, strict=True) if not hide]
        face_to_image = catalog.faces_to_images([i for i, _ in hits])
        best: dict[int, tuple[int, float]] = {}
        for face_id, sim in hits:
            image_id = face_to_image.get(face_id)
            if image_id is not None and image_id not in best:
                best[image_id] = (face_id, sim)
        ranked = list(best.items())[:k]
        images = catalog.get_images([i for i, _ in ranked])
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
        if audit is not None:  # None: the caller records the event itself
            event = audit(
                probe_sha256=probe_sha256,
                sources=list(sources or []),
                top_k=k,
                threshold=cut,
                results=len(matches),
                likely_matches=sum(m.is_match for m in matches),
            )
            parts.record(event, who)
        return SearchResult(
            probe_face=probe_face,
            threshold=cut,
            matches=tuple(matches),
            model=parts.model,
            probe_faces=probe_faces,
        )

    # -- reads -------------------------------------------------------------------------
    def show(self, image_id: int) -> Any:
        image = self.parts.catalog.get_images([image_id]).get(image_id)
        if image is None:
            raise NotFound(f"no image with id {image_id}")
        return image

    def list_images(
        self, *, after: int = 0, limit: int = 50, source: str | None = None
    ) -> list[ImageRecord]:
        """Images in id order after the id ``after`` (for cursor pagination)."""
        catalog = self.parts.catalog
        if source is not None:
            self.parts.source(source)  # a mistyped source is an error, not an empty page
        ids = catalog.list_image_ids(after=after, limit=limit, source=source)
        images = catalog.get_images(ids)
        return [images[i] for i in ids if i in images]

    def stats(self) -> dict[str, Any]:
        catalog = self.parts.catalog
        stats = catalog.stats()
        state = self.parts.index.state()
        count, id_sum = catalog.face_state()
        stats["model"] = catalog.model_key()
        stats["detector"] = home_detector(catalog)
        stats["index"] = {
            "kind": state.kind,
            "faces": state.count,
            "consistent": state.count == count and state.id_sum == id_sum,
        }
        stats["home"] = str(self.parts.home)
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
            scores, labels, [p.fold for p in pairs], self.parts.settings.search.threshold
        )
        report["images"] = len(paths)
        unreadable_paths = {u["path"] for u in unreadable}
        report["images_without_face"] = sorted(
            p for p, v in vectors.items() if v is None and p not in unreadable_paths
        )
        report["unreadable"] = unreadable
        report["model"] = self.parts.model.key
        return report


def chosen_face(probe: Probe, face: int | None) -> int:
    """The probe face to search (default: the largest, 0), or why there is none."""
    if not probe.faces:
        raise NoFaceFound("no face found in the probe photo")
    index = face or 0
    if not 0 <= index < len(probe.faces):
        raise InvalidInput(
            f"face {index} does not exist: the probe has {len(probe.faces)} face(s), "
            f"numbered 0 to {len(probe.faces) - 1}"
        )
    return index
