"""FaceSearch: the engine behind the CLI and the API.

It takes its parts from build_parts(settings) (parts.py: catalog, index, models, ...),
has the index keep itself consistent with the catalog, and offers one method per job:
ingest, search, show, stats, reindex.
"""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np

from facesearch.catalog.ports import Catalog, Removal
from facesearch.config import Settings
from facesearch.domain import ImageRecord, Match, ModelId, ProbeFace, Requester, SearchResult
from facesearch.errors import (
    InvalidInput,
    ModelMismatch,
    NoFaceFound,
    NotFound,
    PermissionDenied,
)
from facesearch.governance.access import access_report, access_report_by_url
from facesearch.governance.audit import AuditEvent, Verification
from facesearch.governance.erasure import Receipt, remove
from facesearch.governance.policy import Source, parse_time, validate_source
from facesearch.governance.urls import published_at
from facesearch.imaging import DecodeLimits, decode_image, read_limited
from facesearch.index.ports import ManagedIndex
from facesearch.ingest.analyse import analyse_or_reason, sha256_of
from facesearch.ingest.items import IngestItem, iter_items
from facesearch.ingest.report import IngestReport
from facesearch.ingest.runner import IngestRun, Progress, run_ingest
from facesearch.parts import build_parts
from facesearch.vision.ports import Embeddings, FaceDetector, FaceEmbedder, RGBImage

# Search asks the index for this many candidates per requested row, because several
# faces of one image collapse into a single row.
OVERFETCH = 3
# An access request by URL answering with more images than this is refused (narrow the
# prefix): a report that size is a collection, not one person's data.
MAX_URL_REPORT_IMAGES = 10_000

P = ParamSpec("P")
R = TypeVar("R")


def _writes(
    method: Callable[Concatenate[FaceSearch, P], R],
) -> Callable[Concatenate[FaceSearch, P], R]:
    """An engine method that writes the index files: run it holding the home's lock."""

    @functools.wraps(method)
    def held(self: FaceSearch, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._writing():
            return method(self, *args, **kwargs)

    return held


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
        parts = build_parts(self.settings, detector=detector, embedder=embedder)
        self.model_spec = parts.model_spec
        self.home = Path(self.settings.home)
        self.limits = DecodeLimits(
            max_bytes=self.settings.limits.max_bytes, max_pixels=self.settings.limits.max_pixels
        )
        self.sealer = parts.sealer
        self.catalog: Catalog = parts.catalog
        # How long an index write waits for another process writing the same index (None:
        # as long as it takes; the server sets a bound and answers 503 past it).
        self.lock_wait: float | None = None
        self.behind = False  # another process was writing the index at the last catch-up
        self.index: ManagedIndex = parts.index
        self.audit = parts.audit
        self.suppressions = parts.suppressions
        self.executor = parts.executor
        self._detector = detector
        self._embedder = embedder
        self.repaired = self._open_index()

    # -- parts, loaded when first needed (stats and show need no model) ------------------
    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = self.model_spec.build_detector()
        return self._detector

    @property
    def embedder(self) -> FaceEmbedder:
        if self._embedder is None:
            self._embedder = self.model_spec.build_embedder()
        return self._embedder

    @property
    def model(self) -> ModelId:
        """The model of the configured embedder (loads it)."""
        return self.embedder.model

    def close(self) -> None:
        self.index.close()
        self.audit.close()
        self.suppressions.close()
        self.catalog.close()

    def default_requester(self) -> Requester:
        return Requester(
            actor=f"local:{getpass.getuser()}",
            jurisdiction=self.settings.governance.requester_jurisdiction,
        )

    def record(self, action: str, who: Requester | None, **details: Any) -> None:
        """Append an audit entry (the engine's own actions, and the API's key changes)."""
        who = who or self.default_requester()
        self.audit.append(
            AuditEvent(
                action=action,
                actor=who.actor,
                purpose=who.purpose,
                case_ref=who.case_ref,
                details=details,
            )
        )

    def __enter__(self) -> FaceSearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- consistency: the index adapter keeps itself in line with the catalog -----------
    def _open_index(self) -> dict[str, int]:
        """Open the index and repair it from the catalog; returns the repairs."""
        return self.index.open()

    def _writing(
        self, wait: float | None = None, changes: bool = False
    ) -> AbstractContextManager[None]:
        """Hold the index for writing (other processes may share it)."""
        return self.index.writing(self.lock_wait if wait is None else wait, changes)

    def catch_up(self) -> bool:
        """See what other processes committed to this home (a command-line ingest beside
        a server) and bring the index in line. Returns False while another process is
        writing the index: this one then keeps searching what it has (erased images are
        never shown: results come from the catalog) and catches up on a later call.
        """
        caught_up = self.index.catch_up()
        self.behind = not caught_up
        return caught_up

    def sync_index(self) -> dict[str, int]:
        """Bring the index in line with the catalog (the truth). Returns what was repaired."""
        return self.index.sync()

    def switch_index(self) -> bool:
        """Switch between exact and approximate search (or retrain) when the size asks."""
        with self._writing():
            return self.index.fit()

    def compact(self) -> dict[str, Any]:
        """Rewrite the index files so that no removed face's vector is left in them."""
        with self._writing(changes=True):
            self.index.compact()
        return {"kind": self.index.kind, "faces": self.index.state().count}

    def reindex(
        self, progress: Callable[[int, int], None] | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """Rebuild the index from the catalog's embeddings (``kind``: exact, ann or auto)."""
        with self._writing(changes=True):
            self.index.rebuild(kind, progress)
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

    @_writes
    def ingest(
        self,
        paths: Sequence[str | Path] | Sequence[IngestItem],
        source: str,
        workers: int | None = None,
        progress: Progress | None = None,
        who: Requester | None = None,
    ) -> IngestReport:
        """Ingest folders, files and manifests (or prepared items) into a registered source."""
        self.source(source)  # refuses an unregistered source before any work
        items = [p for p in paths if isinstance(p, IngestItem)]
        items += iter_items([p for p in paths if not isinstance(p, IngestItem)])
        self._check_model()
        run = IngestRun(
            self.catalog,
            self.index,
            source,
            self.limits,
            progress,
            self._suppressor(),
            # Before each batch is written: no image is ever stored without an entry.
            audit=lambda batch: self.record("ingest.batch", who, source=source, **batch),
        )
        n_workers = workers or self.settings.workers
        report = run_ingest(
            run,
            items,
            self.executor(n_workers),
            self.settings.faces,
            self.model_spec,
            analyser=self._analyse_here if n_workers <= 1 else None,
        )
        self.record(
            "ingest",
            who,
            source=source,
            files=report.files,
            images_added=report.images_added,
            copies_added=report.copies_added,
            faces_indexed=report.faces_indexed,
            faces_suppressed=report.faces_suppressed,
            failures=len(report.failed),
            interrupted=report.interrupted,
        )
        self.switch_index()
        return report

    def _suppressor(self) -> Callable[[np.ndarray], np.ndarray] | None:
        if self.suppressions.count() == 0:
            return None
        model, strict = self.model.key, self.settings.governance.strict_threshold
        return lambda vectors: self.suppressions.matches(vectors, model, strict)

    def _analyse_here(self, data: bytes, sha: str) -> Any:
        return analyse_or_reason(
            data, sha, self.limits, self.settings.faces, self.detector, self.embedder
        )

    # -- search ------------------------------------------------------------------------
    def probe(self, photo: bytes | str | Path | Probe) -> Probe:
        """Decode a probe photo and embed every face in it (largest first); a Probe made
        already (by the server's model pool) is returned as it is."""
        if isinstance(photo, Probe):
            return photo
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
        who: Requester | None = None,
    ) -> list[SearchResult]:
        """Rank stored images by how closely their faces match the probe's face(s)."""
        who = who or self.default_requester()
        self._check_requester(who)
        probe = self.probe(photo)
        first = _chosen_face(probe, face)
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
        self._check_requester(who)

    def _check_requester(self, who: Requester) -> None:
        rules = self.settings.governance
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
        action: str | None = "search",
        include_suppressed: bool = False,
    ) -> SearchResult:
        """Search one embedding; results collapse to one row per image (its best face).

        Faces of people on the suppression list are never returned, except to the access
        and erasure requests of those people (``include_suppressed``). Every call is
        written to the audit log as ``action``.
        """
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
        for name in sources or ():
            self.source(name)  # a mistyped source is an error, not an empty answer
        allowed = self.catalog.face_ids(sources) if sources else None
        ids, sims = self.index.search(vector[None, :], k * OVERFETCH, allowed)
        hits = [(int(i), float(s)) for i, s in zip(ids[0], sims[0], strict=True) if i >= 0]
        if hits and not include_suppressed and self.suppressions.count():
            vectors = self.catalog.embeddings([i for i, _ in hits])
            hidden = self.suppressions.matches(
                vectors, self.model.key, self.settings.governance.strict_threshold
            )
            hits = [h for h, hide in zip(hits, hidden, strict=True) if not hide]
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
        if action is not None:  # None: the caller records the event itself
            self.record(
                action,
                who,
                probe_sha256=probe_sha256,
                sources=list(sources or []),
                top_k=k,
                threshold=cut,
                results=len(matches),
                likely_matches=sum(m.is_match for m in matches),
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

    def list_images(
        self, *, after: int = 0, limit: int = 50, source: str | None = None
    ) -> list[ImageRecord]:
        """Images in id order after the id ``after`` (for cursor pagination)."""
        if source is not None:
            self.source(source)  # a mistyped source is an error, not an empty page
        ids = self.catalog.list_image_ids(after=after, limit=limit, source=source)
        images = self.catalog.get_images(ids)
        return [images[i] for i in ids if i in images]

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
        unreadable_paths = {u["path"] for u in unreadable}
        report["images_without_face"] = sorted(
            p for p, v in vectors.items() if v is None and p not in unreadable_paths
        )
        report["unreadable"] = unreadable
        report["model"] = self.model.key
        return report

    # -- sources -----------------------------------------------------------------------
    def add_source(self, source: Source, who: Requester | None = None) -> Source:
        """Register a collection with its lawful basis and retention period."""
        stored = self.catalog.add_source(validate_source(source))
        self.record("source.add", who, source=source.name, policy=stored.policy())
        return stored

    def update_source(self, name: str, who: Requester | None = None, **changes: Any) -> Source:
        """Change a source's policy (its images' expiry dates follow its retention)."""
        unknown = set(changes) - set(Source.__dataclass_fields__) - {"name", "counts"}
        if unknown or "name" in changes:
            raise InvalidInput(f"cannot change {', '.join(sorted(unknown or {'name'}))}")
        updated = validate_source(replace(self.source(name), **changes))
        stored = self.catalog.update_source(updated)
        self.record(
            "source.update", who, source=name, changes=sorted(changes), policy=stored.policy()
        )
        return stored

    def source(self, name: str) -> Source:
        found = self.catalog.get_source(name)
        if found is None:
            raise NotFound(
                f"source {name!r} is not registered: register it with its lawful basis and "
                "retention period first (facesearch sources add)"
            )
        return found

    def sources(self) -> list[Source]:
        return self.catalog.list_sources()

    # -- retention and erasure ---------------------------------------------------------
    def _derived_files(self, removal: Removal) -> list[Path]:
        """Files made from removed faces or images (face crops, thumbnails, uploads)."""
        out: list[Path] = []
        cache = self.home / "cache"
        for face_id in removal.face_ids:
            out += cache.glob(f"faces/{face_id}.*")
        for image_id, sha in removal.images:
            out += cache.glob(f"images/{image_id}.*")
            out += (self.home / "uploads").glob(f"{sha}*")
        return out

    @_writes
    def run_retention(
        self, dry_run: bool = False, who: Requester | None = None, at: datetime | None = None
    ) -> Receipt:
        """Remove every image whose retention period has passed (legal holds excepted)."""
        when = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
        expired = self.catalog.expired_provenance(when)
        receipt = remove(
            self.catalog,
            self.index,
            expired,
            action="retention",
            scope={"expired_before": when},
            dry_run=dry_run,
            derived_files=self._derived_files,
        )
        self.record("retention", who, **_receipt_details(receipt))
        return receipt

    @_writes
    def erase(
        self,
        *,
        image_ids: Sequence[int] = (),
        sources: Sequence[str] = (),
        jurisdiction: str | None = None,
        dry_run: bool = False,
        who: Requester | None = None,
        reason: str = "",
    ) -> Receipt:
        """Erase images, whole sources, or every source whose people include a jurisdiction."""
        names = list(sources)
        for name in names:
            self.source(name)
        if jurisdiction:
            code = jurisdiction.strip().upper()
            names += [s.name for s in self.sources() if code in s.jurisdictions]
        missing = set(image_ids) - set(self.catalog.get_images(list(image_ids)))
        if missing:
            raise NotFound(f"no image with id {', '.join(map(str, sorted(missing)))}")
        if not (image_ids or names or jurisdiction):
            raise InvalidInput("say what to erase: image ids, sources or a jurisdiction")
        provenance = self.catalog.provenance_of(sources=names, image_ids=list(image_ids))
        scope = {
            "image_ids": sorted(image_ids),
            "sources": sorted(set(names)),
            "jurisdiction": jurisdiction,
            "reason": reason,
        }
        receipt = remove(
            self.catalog,
            self.index,
            provenance,
            action="erasure",
            scope=scope,
            dry_run=dry_run,
            derived_files=self._derived_files,
        )
        self.record("erasure", who, **_receipt_details(receipt))
        return receipt

    def find_person(
        self,
        photo: bytes | str | Path | Probe,
        threshold: float | None = None,
        face: int | None = None,
        who: Requester | None = None,
        top_k: int = 1000,
    ) -> SearchResult:
        """Every image of the person in ``photo`` above the strict threshold (for review
        before an erasure), including images withheld from searches by an objection."""
        probe = self.probe(photo)
        index = _chosen_face(probe, face)
        cut = self.settings.governance.strict_threshold if threshold is None else threshold
        result = self.search_vector(
            probe.embeddings[index],
            probe_face=probe.faces[index],
            top_k=top_k,
            threshold=cut,
            probe_faces=probe.faces,
            who=who,
            probe_sha256=probe.sha256,
            action="erasure.review",
            include_suppressed=True,
        )
        return replace(result, matches=tuple(m for m in result.matches if m.is_match))

    # -- objection and access ----------------------------------------------------------
    def suppress(
        self,
        photo: bytes | str | Path | Probe,
        consent_ref: str,
        note: str = "",
        face: int | None = None,
        who: Requester | None = None,
    ) -> int:
        """Add a person who objected to the suppression list (with their consent)."""
        probe = self.probe(photo)
        index = _chosen_face(probe, face)
        suppression_id = self.suppressions.add(
            probe.embeddings[index], self.model.key, consent_ref, note
        )
        self.record("suppression.add", who, suppression_id=suppression_id, consent_ref=consent_ref)
        return suppression_id

    def access_request(
        self, photo: bytes | Probe, face: int | None = None, who: Requester | None = None
    ) -> dict[str, Any]:
        """Am I in here? The report for a data subject. The photo stays in memory."""
        import uuid

        probe = self.probe(photo)
        index = _chosen_face(probe, face)
        strict = self.settings.governance.strict_threshold
        request_id = uuid.uuid4().hex[:12]
        result = self.search_vector(
            probe.embeddings[index],
            probe_face=probe.faces[index],
            top_k=1000,
            threshold=strict,
            probe_faces=probe.faces,
            who=who,
            probe_sha256=probe.sha256,
            action=None,
            include_suppressed=True,
        )
        report = access_report(result, {s.name: s for s in self.sources()}, strict, request_id)
        # Only that it happened, a hash and the count: never the photo or its template.
        self.record(
            "access_request",
            who,
            request_id=request_id,
            probe_sha256=probe.sha256,
            results=report["images_found"],
        )
        return report

    def access_request_by_url(
        self, url: str, *, prefix: bool = False, who: Requester | None = None
    ) -> dict[str, Any]:
        """Am I in here? asked by where the photos were published, with no photo: every
        image with a copy whose page or file URL is ``url`` (or lies under it, with
        ``prefix``; see governance/urls.py), including images withheld from searches by
        an objection. Nothing about the request is kept but its audit entry."""
        import uuid

        where = published_at(url, prefix=prefix)
        image_ids = self.catalog.images_published_at(where, limit=MAX_URL_REPORT_IMAGES)
        if len(image_ids) > MAX_URL_REPORT_IMAGES:
            raise InvalidInput(
                f"more than {MAX_URL_REPORT_IMAGES} images were published under {where.url}, "
                "too many for one report: give a narrower prefix"
            )
        images = self.catalog.get_images(image_ids)
        request_id = uuid.uuid4().hex[:12]
        report = access_report_by_url(
            [images[i] for i in image_ids if i in images],
            {s.name: s for s in self.sources()},
            where,
            request_id,
            self.catalog.model_key() or "",
        )
        # A keyed hash, not the address: a plain SHA-256 of a URL is undone by hashing
        # candidate URLs (every page_url in the catalog, say), which would make the log a
        # list of the profiles whose owners asked. The same address gives the same hash,
        # so a later request can be linked to this one.
        self.record(
            "access_request",
            who,
            request_id=request_id,
            match=where.kind,
            url_hash=self._url_hash(where.key),
            results=report["images_found"],
        )
        return report

    def _url_hash(self, key: str) -> str:
        """HMAC-SHA256 of a normalised URL under this home's own random key (made on
        first use, kept in the catalog)."""
        import hashlib
        import hmac
        import secrets

        secret = self.catalog.meta("access_url_hash_key") or self.catalog.setdefault_meta(
            "access_url_hash_key", secrets.token_hex(32)
        )
        return hmac.new(bytes.fromhex(secret), key.encode(), hashlib.sha256).hexdigest()

    # -- audit and transparency --------------------------------------------------------
    def verify_audit(self) -> Verification:
        return self.audit.verify()

    def export_audit(
        self, case_ref: str | None = None, who: Requester | None = None
    ) -> list[dict[str, Any]]:
        entries = [e.as_dict() for e in self.audit.entries(case_ref=case_ref)]
        self.record("audit.export", who, case=case_ref, entries=len(entries))
        return entries

    def transparency_report(
        self, since: str | None = None, until: str | None = None
    ) -> dict[str, Any]:
        """Per source its basis, retention and counts; searches per purpose; removals."""
        start = parse_time(since).isoformat() if since else None
        end = parse_time(until).isoformat() if until else None
        per_purpose: dict[str, int] = {}
        counts: dict[str, int] = {}
        erased: dict[str, int] = {"images": 0, "faces": 0}
        expired: dict[str, int] = {"images": 0, "faces": 0}
        for entry in self.audit.entries(since=start, until=end):
            counts[entry.action] = counts.get(entry.action, 0) + 1
            if entry.action == "search":
                key = entry.purpose or "(none given)"
                per_purpose[key] = per_purpose.get(key, 0) + 1
            elif entry.action in ("erasure", "retention") and not entry.details.get("dry_run"):
                bucket = erased if entry.action == "erasure" else expired
                bucket["images"] += int(entry.details.get("images_removed", 0))
                bucket["faces"] += int(entry.details.get("faces_removed", 0))
        return {
            "period": {"since": start, "until": end},
            "sources": [
                {
                    **s.policy(),
                    "images": s.counts.get("images", 0),
                    "faces": s.counts.get("faces", 0),
                }
                for s in self.sources()
            ],
            "searches_by_purpose": per_purpose,
            "searches": counts.get("search", 0),
            "erasures": counts.get("erasure", 0),
            "erased": erased,
            "retention_runs": counts.get("retention", 0),
            "expired": expired,
            "access_requests": counts.get("access_request", 0),
            "suppressions_added": counts.get("suppression.add", 0),
            "suppressions_on_file": self.suppressions.count(),
        }


def _chosen_face(probe: Probe, face: int | None) -> int:
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


def _receipt_details(receipt: Receipt) -> dict[str, Any]:
    """The receipt, as audit details (its action is the entry's own)."""
    return {k: v for k, v in receipt.as_dict().items() if k != "action"}


__all__ = ["FaceSearch", "ImageRecord", "Probe"]
