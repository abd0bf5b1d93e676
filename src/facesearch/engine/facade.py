"""FaceSearch: the engine behind the CLI and the API.

It opens a home from Settings (``facesearch.parts.build_parts`` chooses the catalog,
index, audit log, suppression list, models and executor) and owns its parts; each public
method hands the work to the module of its job: search.py, ingest.py, maintenance.py
(the index follows the catalog) and governance.py (sources, retention, erasure,
objections, access, audit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.accounts.ports import AccountStore, KeyInfo
from facesearch.catalog.ports import Catalog
from facesearch.config import Settings
from facesearch.domain import (
    Event,
    ImageRecord,
    ModelId,
    Person,
    ProbeFace,
    Requester,
    SearchEvent,
    SearchMade,
    SearchResult,
    Source,
)
from facesearch.engine.governance import Governance
from facesearch.engine.home import Home
from facesearch.engine.ingest import Ingester
from facesearch.engine.maintenance import Maintenance
from facesearch.engine.people import People
from facesearch.engine.search import Probe, Searcher
from facesearch.governance.audit import AuditEntry, AuditLog, Verification
from facesearch.governance.casefile import CaseFile
from facesearch.governance.erasure import Receipt
from facesearch.governance.suppression import SuppressionList
from facesearch.imaging import DecodeLimits
from facesearch.index.ports import ManagedIndex
from facesearch.ingest.items import IngestItem
from facesearch.ingest.report import IngestReport
from facesearch.ingest.runner import Progress
from facesearch.parts import build_parts
from facesearch.security.sealing import Sealer
from facesearch.vision.ports import FaceDetector, FaceEmbedder
from facesearch.vision.registry import ModelSpec


class FaceSearch:
    """Ingest photos, then find the photos that show the same person as a probe."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        detector: FaceDetector | None = None,
        embedder: FaceEmbedder | None = None,
    ) -> None:
        settings = settings or Settings()
        # Every adapter is chosen in one place, from the settings (catalog.url, index.url).
        built = build_parts(settings, detector=detector, embedder=embedder)
        self.parts = Home(
            settings=settings,
            built=built,
            limits=DecodeLimits(
                max_bytes=settings.limits.max_bytes, max_pixels=settings.limits.max_pixels
            ),
            detector=detector,
            embedder=embedder,
        )
        self._maintenance = Maintenance(self.parts)
        self._searcher = Searcher(self.parts)
        self._ingester = Ingester(self.parts, self._maintenance)
        self._governance = Governance(self.parts, self._searcher, self._maintenance)
        self._people = People(self.parts, self._searcher)
        self.repaired = self._maintenance.open_index()

    # -- parts ---------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.parts.settings

    @property
    def model_spec(self) -> ModelSpec:
        return self.parts.model_spec

    @property
    def home(self) -> Path:
        return self.parts.home

    @property
    def limits(self) -> DecodeLimits:
        return self.parts.limits

    @property
    def sealer(self) -> Sealer:
        return self.parts.sealer

    @property
    def catalog(self) -> Catalog:
        return self.parts.catalog

    @property
    def index(self) -> ManagedIndex:
        return self.parts.index

    @property
    def audit(self) -> AuditLog:
        return self.parts.audit

    @property
    def suppressions(self) -> SuppressionList:
        return self.parts.suppressions

    @property
    def detector(self) -> FaceDetector:
        return self.parts.detector

    @property
    def embedder(self) -> FaceEmbedder:
        return self.parts.embedder

    @property
    def model(self) -> ModelId:
        """The model of the configured embedder (loads it)."""
        return self.parts.model

    @property
    def lock_wait(self) -> float | None:
        """How long an index write waits for another process writing the same home (None:
        as long as it takes; the server sets a bound and answers 503 past it)."""
        return self._maintenance.lock_wait

    @lock_wait.setter
    def lock_wait(self, seconds: float | None) -> None:
        self._maintenance.lock_wait = seconds

    @property
    def behind(self) -> bool:
        """Another process was writing the index at the last catch-up."""
        return self._maintenance.behind

    def close(self) -> None:
        self.parts.close()

    def __enter__(self) -> FaceSearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def default_requester(self) -> Requester:
        return self.parts.default_requester()

    def record(self, event: Event, who: Requester | None = None) -> None:
        """Append the audit entry of ``event`` (the engine's methods record their own
        state changes: this is for events of the caller's)."""
        self.parts.record(event, who)

    # -- consistency (maintenance.py) ---------------------------------------------------
    def _writing(
        self, wait: float | None = None, changes: bool = False
    ) -> AbstractContextManager[None]:
        """Hold the home's index lock (Maintenance.writing): tests hold it the way
        another process writing the same home would."""
        return self._maintenance.writing(wait, changes)

    def catch_up(self) -> bool:
        """See what other processes committed to this home; False while another process
        is writing the index (see Maintenance.catch_up)."""
        return self._maintenance.catch_up()

    def sync_index(self) -> dict[str, int]:
        """Bring the index in line with the catalog (the truth). Returns what was repaired."""
        return self._maintenance.sync_index()

    def switch_index(self) -> bool:
        """Switch between exact and approximate search (or retrain) when the size asks."""
        return self._maintenance.switch_index()

    def compact(self) -> dict[str, Any]:
        """Rewrite the index files so that no removed face's vector is left in them."""
        return self._maintenance.compact()

    def reindex(
        self, progress: Callable[[int, int], None] | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """Rebuild the index from the catalog's embeddings (``kind``: exact, ann or auto)."""
        return self._maintenance.reindex(progress, kind)

    def reembed(
        self, progress: Callable[[int, int], None] | None = None, who: Requester | None = None
    ) -> dict[str, Any]:
        """Re-embed every stored face with the configured embedder and move the home to
        its model (resumable, audited; see ``Maintenance.reembed``)."""
        return self._maintenance.reembed(progress, who)

    # -- ingest (ingest.py) ------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[str | Path] | Sequence[IngestItem],
        source: str,
        workers: int | None = None,
        progress: Progress | None = None,
        who: Requester | None = None,
    ) -> IngestReport:
        """Ingest folders, files and manifests (or prepared items) into a registered source;
        a source whose policy declares grouping has its new faces grouped into persons."""
        report = self._ingester.ingest(paths, source, workers, progress, who)
        if report.faces_indexed and self.parts.source(source).group_people:
            self._people.group(who=who)
        return report

    # -- search and reads (search.py) --------------------------------------------------
    def probe(self, photo: bytes | str | Path | Probe) -> Probe:
        """Decode a probe photo and embed every face in it (largest first); a Probe made
        already (by the server's model pool) is returned as it is."""
        return self._searcher.probe(photo)

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
        return self._searcher.search(
            photo,
            face=face,
            all_faces=all_faces,
            top_k=top_k,
            threshold=threshold,
            sources=sources,
            who=who,
        )

    def search_faces(
        self,
        face_ids: Sequence[int],
        *,
        combine: str = "mean",
        top_k: int | None = None,
        threshold: float | None = None,
        sources: Sequence[str] | None = None,
        who: Requester | None = None,
    ) -> SearchResult:
        """Search again from results: stored faces become the probe (audited like a
        search with a photo; the faces themselves are not returned)."""
        return self._searcher.search_faces(
            face_ids, combine=combine, top_k=top_k, threshold=threshold, sources=sources, who=who
        )

    def search_many(
        self,
        photos: Sequence[bytes | str | Path | Probe],
        *,
        face_ids: Sequence[int] = (),
        combine: str = "mean",
        top_k: int | None = None,
        threshold: float | None = None,
        sources: Sequence[str] | None = None,
        who: Requester | None = None,
    ) -> SearchResult:
        """Search with several photos of one person (the largest face of each) and stored
        faces, combined by ``combine`` (max or mean); each result lists the probes it
        matched."""
        return self._searcher.search_many(
            photos,
            face_ids=face_ids,
            combine=combine,
            top_k=top_k,
            threshold=threshold,
            sources=sources,
            who=who,
        )

    def check_requester(self, who: Requester) -> None:
        """Refuse a search this deployment's rules refuse (no purpose, a blocked place)."""
        self._searcher.check_requester(who)

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
        Suppressed faces are left out unless ``include_suppressed``; the call is audited
        as an ``audit`` event (None: the caller records it)."""
        return self._searcher.search_vectors(
            np.asarray(vector)[None, :],
            probe_face=probe_face,
            top_k=top_k,
            threshold=threshold,
            sources=sources,
            probe_faces=probe_faces,
            who=who,
            probe_sha256=probe_sha256,
            audit=audit,
            include_suppressed=include_suppressed,
        )

    def show(self, image_id: int) -> Any:
        return self._searcher.show(image_id)

    def list_images(
        self, *, after: int = 0, limit: int = 50, source: str | None = None
    ) -> list[ImageRecord]:
        """Images in id order after the id ``after`` (for cursor pagination)."""
        return self._searcher.list_images(after=after, limit=limit, source=source)

    def stats(self) -> dict[str, Any]:
        return self._searcher.stats()

    def models(self) -> dict[str, Any]:
        """The configured detector and embedder, the home's model, what is installed."""
        return self._searcher.models()

    def failures(self, source: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Files that could not be ingested and why (of one source, or all), oldest first."""
        if source is not None:
            self.parts.source(source)  # NotFound for a source that is not registered
        return self.catalog.failures(limit, source)

    def evaluate(
        self,
        pairs_csv: str | Path,
        root: str | Path,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Verification metrics on labelled pairs of photos under ``root``."""
        return self._searcher.evaluate(pairs_csv, root, progress)

    # -- people (people.py) ------------------------------------------------------------
    def group_people(self, full: bool = False, who: Requester | None = None) -> dict[str, Any]:
        """Group the faces of sources whose policy declares it into persons (new faces
        only, or every unconfirmed face with ``full``); audited."""
        return self._people.group(full, who)

    def persons(self) -> list[Person]:
        return self._people.persons()

    def person(self, person_id: int) -> Person:
        return self._people.person(person_id)

    def rename_person(self, person_id: int, name: str, who: Requester | None = None) -> Person:
        return self._people.rename(person_id, name, who)

    def merge_persons(
        self, into: int, others: Sequence[int], who: Requester | None = None
    ) -> Person:
        """Merge persons (their faces confirmed: later grouping keeps them together)."""
        return self._people.merge(into, others, who)

    def split_person(
        self, person_id: int, face_ids: Sequence[int], who: Requester | None = None
    ) -> tuple[Person, Person]:
        """Split faces off into a new person (both sides confirmed: they stay apart)."""
        return self._people.split(person_id, face_ids, who)

    def move_faces(
        self, face_ids: Sequence[int], person_id: int | None, who: Requester | None = None
    ) -> Person:
        """Put faces into a person (None: a new one), confirmed."""
        return self._people.move(face_ids, person_id, who)

    def search_person(
        self,
        person_id: int,
        *,
        top_k: int | None = None,
        threshold: float | None = None,
        sources: Sequence[str] | None = None,
        who: Requester | None = None,
    ) -> SearchResult:
        """Search with every face of a person as probes (best similarity per image)."""
        return self._people.search(
            person_id, top_k=top_k, threshold=threshold, sources=sources, who=who
        )

    def review_person(self, person_id: int, who: Requester | None = None) -> SearchResult:
        """Every image an erasure of this person would take, for review before erasing."""
        return self._people.review(person_id, who)

    def access_request_person(self, person_id: int, who: Requester | None = None) -> dict[str, Any]:
        """The access report of the data subject this person is."""
        return self._people.access_request(person_id, who)

    # -- governance (governance.py) ----------------------------------------------------
    def add_source(self, source: Source, who: Requester | None = None) -> Source:
        """Register a collection with its lawful basis and retention period."""
        return self._governance.add_source(source, who)

    def update_source(self, name: str, who: Requester | None = None, **changes: Any) -> Source:
        """Change a source's policy (its images' expiry dates follow its retention;
        declaring or withdrawing grouping groups its faces, or takes them out of persons,
        at once)."""
        before = self.parts.source(name).group_people
        updated = self._governance.update_source(name, who, **changes)
        if updated.group_people != before:
            self._people.group(who=who)
        return updated

    def source(self, name: str) -> Source:
        return self.parts.source(name)

    def sources(self) -> list[Source]:
        return self._governance.sources()

    def run_retention(
        self, dry_run: bool = False, who: Requester | None = None, at: datetime | None = None
    ) -> Receipt:
        """Remove every image whose retention period has passed (legal holds excepted)."""
        return self._governance.run_retention(dry_run, who, at)

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
        return self._governance.erase(
            image_ids=image_ids,
            sources=sources,
            jurisdiction=jurisdiction,
            dry_run=dry_run,
            who=who,
            reason=reason,
        )

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
        return self._governance.find_person(photo, threshold, face, who, top_k)

    def suppress(
        self,
        photo: bytes | str | Path | Probe,
        consent_ref: str,
        note: str = "",
        face: int | None = None,
        who: Requester | None = None,
    ) -> int:
        """Add a person who objected to the suppression list (with their consent)."""
        return self._governance.suppress(photo, consent_ref, note, face, who)

    def access_request(
        self, photo: bytes | Probe, face: int | None = None, who: Requester | None = None
    ) -> dict[str, Any]:
        """Am I in here? The report for a data subject. The photo stays in memory."""
        return self._governance.access_request(photo, face, who)

    def access_request_by_url(
        self, url: str, *, prefix: bool = False, who: Requester | None = None
    ) -> dict[str, Any]:
        """Am I in here? asked by where the photos were published, with no photo (see
        Governance.access_request_by_url)."""
        return self._governance.access_request_by_url(url, prefix=prefix, who=who)

    def remove_suppression(self, suppression_id: int, who: Requester | None = None) -> None:
        """Take a person off the suppression list (recorded; NotFound when absent)."""
        self._governance.remove_suppression(suppression_id, who)

    def create_key(
        self, accounts: AccountStore, name: str, role: str, who: Requester | None = None
    ) -> tuple[KeyInfo, str]:
        """A new API key in ``accounts``, recorded (its id, never the key)."""
        return self._governance.create_key(accounts, name, role, who)

    def revoke_key(
        self, accounts: AccountStore, key_id: str, who: Requester | None = None
    ) -> KeyInfo:
        """Revoke an API key in ``accounts``, recorded (NotFound when there is none)."""
        return self._governance.revoke_key(accounts, key_id, who)

    def add_user(
        self,
        accounts: AccountStore,
        username: str,
        password: str,
        role: str,
        who: Requester | None = None,
    ) -> None:
        """Add a web user to ``accounts`` (or reset their password), recorded."""
        self._governance.add_user(accounts, username, password, role, who)

    def read_audit(
        self,
        who: Requester | None = None,
        *,
        case_ref: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after: int | None = None,
        limit: int | None = None,
        last: int | None = None,
    ) -> list[AuditEntry]:
        """Audit entries oldest first, filtered and paged (see Governance.read_audit);
        the read is itself recorded as ``audit.read``."""
        return self._governance.read_audit(
            who,
            case_ref=case_ref,
            action=action,
            since=since,
            until=until,
            after=after,
            limit=limit,
            last=last,
        )

    def verify_audit(self) -> Verification:
        return self._governance.verify_audit()

    def case_file(
        self, case_ref: str, who: Requester | None = None, format: str = "json"
    ) -> CaseFile:
        """The case file of ``case_ref``: its searches, their results, the matching audit
        entries and the log's verification (render with facesearch.governance.casefile's
        to_html / to_pdf). Recorded as ``case.export``."""
        return self._governance.case_file(case_ref, who, format)

    def export_audit(
        self, case_ref: str | None = None, who: Requester | None = None
    ) -> list[dict[str, Any]]:
        return self._governance.export_audit(case_ref, who)

    def transparency_report(
        self, since: str | None = None, until: str | None = None
    ) -> dict[str, Any]:
        """Per source its basis, retention and counts; searches per purpose; removals."""
        return self._governance.transparency_report(since, until)
