"""Searching: probe photos, ranked matches, the requester's checks, and the reads
(show, list, stats, evaluate) that answer from the catalog."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.catalog.ports import Catalog
from facesearch.domain import (
    Copy,
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
from facesearch.imaging import decode_image, hash_distance, read_limited
from facesearch.index.ports import FaceFilter
from facesearch.ingest.analyse import sha256_of
from facesearch.parts import home_detector
from facesearch.vision.calibration import Calibration, for_model
from facesearch.vision.ports import Embeddings, RGBImage

# Search asks the index for this many candidates per requested row, because several
# faces of one image collapse into a single row.
OVERFETCH = 3

# How several probes of one person are combined (docs/benchmarks.md, "Several probes"):
# max, a face's best similarity to any probe; mean, its similarity to the probes' mean
# (the default: it ranked at least as well on the dev set, and one comparison per face
# keeps the chance figures lower than max's one per probe).
COMBINE = ("max", "mean")
DEFAULT_COMBINE = "mean"


def combined(vectors: np.ndarray, combine: str) -> np.ndarray:
    """The index queries for ``vectors``: each of them, or their re-normalised mean."""
    if combine == "mean" and len(vectors) > 1:
        mean = vectors.mean(axis=0)
        unit: np.ndarray = (mean / max(float(np.linalg.norm(mean)), 1e-12))[None, :]
        return unit.astype(np.float32)
    return vectors


# Two results are copies of one photo when their perceptual hashes differ in at most this
# many of 64 bits AND their matched faces are this similar (docs/results.md, "Copies"):
# the hash alone could merge two photos of one scene, the face alone two photos of a person.
COPY_HASH_BITS = 8
COPY_FACE_SIMILARITY = 0.98


def group_copies(
    ranked: list[tuple[int, tuple[int, float]]],
    images: dict[int, ImageRecord],
    catalog: Catalog,
) -> tuple[list[tuple[int, tuple[int, float]]], dict[int, list[Copy]]]:
    """Fold copies of one photo into the best-ranked of them. Returns the rows left and,
    per row with copies, every copy (itself included), the largest first."""
    hashed = [(i, f) for i, (f, _) in ranked if images[i].phash]
    if len(hashed) < 2:
        return ranked, {}
    faces = [f for _, f in hashed]
    vectors = dict(zip(faces, catalog.embeddings(faces), strict=True))
    leads: list[int] = []
    members: dict[int, list[tuple[int, int, float]]] = {}
    kept = []
    for image_id, (face_id, sim) in ranked:
        phash = images[image_id].phash
        home = None
        if phash:
            for lead in leads:
                lead_face = members[lead][0][1]
                if (
                    hash_distance(phash, images[lead].phash or "") <= COPY_HASH_BITS
                    and float(vectors[face_id] @ vectors[lead_face]) >= COPY_FACE_SIMILARITY
                ):
                    home = lead
                    break
        if home is None:
            kept.append((image_id, (face_id, sim)))
            if phash:
                leads.append(image_id)
                members[image_id] = [(image_id, face_id, sim)]
        else:
            members[home].append((image_id, face_id, sim))
    copies: dict[int, list[Copy]] = {}
    for lead, group in members.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda m: (-images[m[0]].width * images[m[0]].height, -m[2]))
        copies[lead] = [
            Copy(
                image=images[i],
                face_id=f,
                similarity=s,
                box=next(x.box for x in images[i].faces if x.id == f),
            )
            for i, f, s in group
        ]
    return kept, copies


def matched_entry(m: Match) -> list[Any]:
    """What the audit log keeps of a result (for the case file): ids, score and band."""
    return [m.image.id, m.face_id, round(m.similarity, 4), m.chance.band if m.chance else None]


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
        self._calibration: Calibration | None = None
        self._calibration_read = False

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
            self.search_vectors(
                probe.embeddings[i][None, :],
                probe_face=probe.faces[i],
                top_k=top_k,
                threshold=threshold,
                sources=sources,
                probe_faces=probe.faces,
                who=who,
                probe_sha256=probe.sha256,
                group=True,
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

    def search_vectors(
        self,
        vectors: np.ndarray,
        *,
        probe_face: ProbeFace,
        combine: str = DEFAULT_COMBINE,
        top_k: int | None = None,
        threshold: float | None = None,
        sources: Sequence[str] | None = None,
        probe_faces: tuple[ProbeFace, ...] = (),
        who: Requester | None = None,
        probe_sha256: str | None = None,
        audit: type[SearchEvent] | None = SearchMade,
        include_suppressed: bool = False,
        probe_face_ids: Sequence[int] = (),
        group: bool = False,
    ) -> SearchResult:
        """Search with one or several embeddings of one person (``combine``: ``max``, the
        best similarity to any probe; ``mean``, the similarity to their normalised mean).

        Every result carries how many different-person faces of the searched collection
        are expected to score as high (its ``chance``), and which probes it matched.
        """
        parts = self.parts
        settings, catalog = parts.settings, parts.catalog
        k = top_k if top_k is not None else settings.search.top_k
        if k <= 0:
            raise InvalidInput("top_k must be a positive number")
        cut = settings.search.threshold if threshold is None else threshold
        if not -1.0 <= cut <= 1.0:
            raise InvalidInput("threshold must be between -1 and 1 (a cosine similarity)")
        if combine not in COMBINE:
            raise InvalidInput(
                f"unknown way to combine probes {combine!r}; known: {', '.join(COMBINE)}"
            )
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, parts.model.dim)
        if not len(vectors):
            raise InvalidInput("no probe to search with")
        stored = catalog.model_key()
        if stored is not None and stored != parts.model.key:
            raise ModelMismatch(
                f"the stored faces were embedded with {stored}; this search uses "
                f"{parts.model.key}. Search with the same model, or move the home to it with "
                "`facesearch reindex --re-embed`."
            )
        # A mistyped source is an error, not an empty answer.
        named = [parts.source(name) for name in sources or ()]
        # Said as a filter, not an array of every allowed face id: an index that keeps
        # the labels (Milvus) filters itself, the local one asks the catalog.
        where = FaceFilter(sources=tuple(sources)) if sources else None
        total = catalog.face_state()[0]
        # Faces searched, for the expected chance matches: the sources' own face counts
        # (a face in two of them counts twice: an upper bound, which errs on caution).
        searched = min(total, sum(s.counts.get("faces", 0) for s in named)) if named else total
        queries = combined(vectors, combine)
        skip = set(probe_face_ids)  # a stored face searched with is not its own result
        fetch = k * OVERFETCH + len(skip)
        ids, sims = parts.index.search(queries, fetch, where=where)
        scores: dict[int, float] = {}
        for row_ids, row_sims in zip(ids, sims, strict=True):
            for i, sim in zip(row_ids, row_sims, strict=True):
                if i >= 0 and int(i) not in skip:
                    scores[int(i)] = max(float(sim), scores.get(int(i), -2.0))
        hits = sorted(scores.items(), key=lambda h: (-h[1], h[0]))
        if hits and not include_suppressed and parts.suppressions.count():
            vectors_found = catalog.embeddings([i for i, _ in hits])
            hidden = parts.suppressions.matches(
                vectors_found, parts.model.key, settings.governance.strict_threshold
            )
            hits = [h for h, hide in zip(hits, hidden, strict=True) if not hide]
        face_to_image = catalog.faces_to_images([i for i, _ in hits])
        best: dict[int, tuple[int, float]] = {}
        for face_id, sim in hits:
            image_id = face_to_image.get(face_id)
            if image_id is not None and image_id not in best:
                best[image_id] = (face_id, sim)
        candidates = list(best.items())
        images = catalog.get_images([i for i, _ in candidates[: k * OVERFETCH]])
        copies: dict[int, list[Copy]] = {}
        if group:
            candidates, copies = group_copies(candidates[: k * OVERFETCH], images, catalog)
        ranked = candidates[:k]
        # Each query is compared with every face searched: with ``max`` over P probes a
        # different person has P chances to score high.
        comparisons = searched * len(queries)
        calibration = self.calibration()
        per_probe = (
            vectors @ catalog.embeddings([f for _, (f, _) in ranked]).T
            if len(vectors) > 1 and ranked
            else None
        )
        matches = []
        for rank, (image_id, (face_id, sim)) in enumerate(ranked, start=1):
            image = images[image_id]
            box = next(f.box for f in image.faces if f.id == face_id)
            probes: tuple[int, ...] = (0,) if sim >= cut else ()
            if per_probe is not None:
                probes = tuple(int(p) for p in np.flatnonzero(per_probe[:, rank - 1] >= cut))
            matches.append(
                Match(
                    rank=rank,
                    similarity=sim,
                    is_match=sim >= cut,
                    face_id=face_id,
                    box=box,
                    image=image,
                    chance=calibration.chance(sim, comparisons) if calibration else None,
                    probes=probes,
                    copies=tuple(copies.get(image_id, ())),
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
            if isinstance(event, SearchMade):
                event = replace(
                    event,
                    probes=len(vectors),
                    probe_face_ids=[int(i) for i in probe_face_ids],
                    faces_searched=searched,
                    matched=[matched_entry(m) for m in matches],
                )
            parts.record(event, who)
        return SearchResult(
            probe_face=probe_face,
            threshold=cut,
            matches=tuple(matches),
            model=parts.model,
            probe_faces=probe_faces,
            faces_searched=comparisons,
            calibrated=calibration is not None,
            combine=combine if len(vectors) > 1 else None,
        )

    def calibration(self) -> Calibration | None:
        """The shipped calibration of the model searched with (read once)."""
        if not self._calibration_read:
            self._calibration = for_model(self.parts.model.key)
            self._calibration_read = True
        return self._calibration

    def search_faces(
        self,
        face_ids: Sequence[int],
        *,
        combine: str = DEFAULT_COMBINE,
        top_k: int | None = None,
        threshold: float | None = None,
        sources: Sequence[str] | None = None,
        who: Requester | None = None,
    ) -> SearchResult:
        """Search with faces already stored (a result searched again), audited like a
        search with a photo; the faces themselves are left out of the results."""
        who = who or self.parts.default_requester()
        self.check_requester(who)
        ids = list(dict.fromkeys(int(i) for i in face_ids))
        if not ids:
            raise InvalidInput("give at least one face id to search with")
        vectors, faces, sha256 = self.stored_probes(ids)
        return self.search_vectors(
            vectors,
            probe_face=faces[0],
            combine=combine,
            top_k=top_k,
            threshold=threshold,
            sources=sources,
            probe_faces=tuple(faces),
            who=who,
            probe_sha256=sha256,
            probe_face_ids=ids,
            group=True,
        )

    def stored_probes(self, ids: list[int]) -> tuple[np.ndarray, list[ProbeFace], str]:
        """Stored faces as probes: their embeddings, their boxes (in their own images)
        and the first one's image hash (the audit's probe hash)."""
        catalog = self.parts.catalog
        found, vectors = catalog.embeddings_found(ids)
        missing = sorted(set(ids) - {int(i) for i in found})
        if missing:
            raise NotFound(f"no face with id {missing[0]}")
        order = {int(f): n for n, f in enumerate(found)}
        image_ids = catalog.faces_to_images(ids)
        images = catalog.get_images(sorted(set(image_ids.values())))
        faces = [
            ProbeFace(index=n, box=rec.box, score=rec.score, size=rec.size)
            for n, face_id in enumerate(ids)
            for rec in images[image_ids[face_id]].faces
            if rec.id == face_id
        ]
        return vectors[[order[i] for i in ids]], faces, images[image_ids[ids[0]]].sha256

    def search_many(
        self,
        photos: Sequence[bytes | str | Path | Probe],
        *,
        face_ids: Sequence[int] = (),
        combine: str = DEFAULT_COMBINE,
        top_k: int | None = None,
        threshold: float | None = None,
        sources: Sequence[str] | None = None,
        who: Requester | None = None,
    ) -> SearchResult:
        """Search with several photos of one person (the largest face of each) and stored
        faces; each result lists the probes it matched (photos first, then face ids)."""
        who = who or self.parts.default_requester()
        self.check_requester(who)
        probes = [self.probe(p) for p in photos]
        for n, probe in enumerate(probes):
            if not probe.faces:
                raise NoFaceFound(f"no face found in probe photo {n + 1}")
        vectors = [p.embeddings[0] for p in probes]
        faces = [p.faces[0] for p in probes]
        ids = list(dict.fromkeys(int(i) for i in face_ids))
        first_sha = probes[0].sha256 if probes else None
        if ids:
            stored, stored_faces, stored_sha = self.stored_probes(ids)
            vectors += list(stored)
            faces += stored_faces
            first_sha = first_sha or stored_sha  # stored faces only: their image's hash
        if not vectors:
            raise InvalidInput("give at least one probe photo or face id")
        faces = [replace(f, index=n) for n, f in enumerate(faces)]
        return self.search_vectors(
            np.stack(vectors),
            probe_face=faces[0],
            combine=combine,
            top_k=top_k,
            threshold=threshold,
            sources=sources,
            probe_faces=tuple(faces),
            who=who,
            probe_sha256=first_sha,
            probe_face_ids=ids,
            group=True,
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

    def models(self) -> dict[str, Any]:
        """The configured models (the embedder is loaded, so a bad setting shows here), the
        model this home's vectors were made with, and every registered model's state."""
        from facesearch.vision.onnx.session import providers
        from facesearch.vision.registry import availability

        spec = self.parts.model_spec
        stored = self.parts.catalog.model_key()
        configured = self.parts.model.key
        return {
            "detector": spec.detector if spec.given_detector is None else "given",
            "embedder": spec.embedder if spec.given_embedder is None else "given",
            "model": configured,
            "home_model": stored,
            "home_accepts": stored is None or stored == configured,
            "onnxruntime_providers": providers(),
            **availability(spec),
        }

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
