"""Governance: sources and their policies, retention and erasure, objections
(suppression), access requests, the audit log and the transparency report.

Every state change here writes its audit entry (``Home.record``), and so does every
read of the audit log: callers (the CLI, the API, the web UI) go through these methods
and cannot forget an entry."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facesearch.accounts.ports import AccountStore, KeyInfo
from facesearch.catalog.ports import Removal
from facesearch.domain import (
    AccessRequested,
    AccessRequestedByUrl,
    AuditExported,
    AuditRead,
    CaseExported,
    ErasureDone,
    ErasureReviewed,
    KeyCreated,
    KeyRevoked,
    PeopleGrouped,
    RemovalEvent,
    Requester,
    RetentionRun,
    SearchMade,
    SearchResult,
    Source,
    SourceAdded,
    SourceUpdated,
    SuppressionAdded,
    SuppressionRemoved,
    UserAdded,
)
from facesearch.engine.home import Home
from facesearch.engine.maintenance import Maintenance
from facesearch.engine.search import Probe, Searcher, chosen_face
from facesearch.errors import InvalidInput, NotFound
from facesearch.governance import casefile
from facesearch.governance.access import access_report, access_report_by_url
from facesearch.governance.audit import AuditEntry, Verification
from facesearch.governance.casefile import CaseFile
from facesearch.governance.erasure import Receipt, remove
from facesearch.governance.policy import parse_time, validate_source
from facesearch.governance.retention import expiry_rule, subject_to_retention
from facesearch.governance.urls import published_at

# An access request by URL answering with more images than this is refused (narrow the
# prefix): a report that size is a collection, not one person's data.
MAX_URL_REPORT_IMAGES = 10_000


class Governance:
    """The data-protection side of a home. Retention and erasure hold the index lock
    (``maintenance``); finding a person and access requests search (``searcher``)."""

    def __init__(self, parts: Home, searcher: Searcher, maintenance: Maintenance) -> None:
        self.parts = parts
        self.searcher = searcher
        self.maintenance = maintenance

    # -- sources -----------------------------------------------------------------------
    def add_source(self, source: Source, who: Requester | None = None) -> Source:
        """Register a collection with its lawful basis and retention period."""
        stored = self.parts.catalog.add_source(validate_source(source))
        self.parts.record(SourceAdded(source=source.name, policy=stored.policy()), who)
        return stored

    def update_source(self, name: str, who: Requester | None = None, **changes: Any) -> Source:
        """Change a source's policy (its images' expiry dates follow its retention)."""
        unknown = set(changes) - set(Source.__dataclass_fields__) - {"name", "counts"}
        if unknown or "name" in changes:
            raise InvalidInput(f"cannot change {', '.join(sorted(unknown or {'name'}))}")
        updated = validate_source(replace(self.parts.source(name), **changes))
        # Every copy's date is rewritten, changed or not: the policy read above may be stale.
        stored = self.parts.catalog.update_source(updated, expiry_rule(updated.retention_days))
        if {"jurisdictions", "retention_days"} & set(changes):  # labels an index may keep
            self.parts.index.relabel(self.parts.catalog.face_ids([name]).tolist())
        self.parts.record(
            SourceUpdated(source=name, changes=sorted(changes), policy=stored.policy()), who
        )
        return stored

    def sources(self) -> list[Source]:
        return self.parts.catalog.list_sources()

    # -- retention and erasure ---------------------------------------------------------
    def derived_files(self, removal: Removal) -> list[Path]:
        """Files made from removed faces or images (face crops, thumbnails, uploads)."""
        out: list[Path] = []
        home = self.parts.home
        cache = home / "cache"
        for face_id in removal.face_ids:
            out += cache.glob(f"faces/{face_id}.*")
        for image_id, sha in removal.images:
            out += cache.glob(f"images/{image_id}.*")
            out += (home / "uploads").glob(f"{sha}*")
        return out

    def run_retention(
        self, dry_run: bool = False, who: Requester | None = None, at: datetime | None = None
    ) -> Receipt:
        """Remove every image whose retention period has passed (legal holds excepted).

        One run at a time among every process sharing the catalog (servers on several
        machines each run retention on a schedule): a second waits for the first."""
        with (
            self.parts.locks.exclusive("retention", self.maintenance.lock_wait),
            self.maintenance.writing(),
        ):
            when = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
            covered = subject_to_retention(self.parts.catalog.list_sources(counts=False))
            expired = self.parts.catalog.expired_provenance(when, covered)
            scope = {"expired_before": when}
            return self._remove(expired, RetentionRun, scope, dry_run, who)

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
        with self.maintenance.writing():
            return self._erase(image_ids, sources, jurisdiction, dry_run, who, reason)

    def _erase(
        self,
        image_ids: Sequence[int],
        sources: Sequence[str],
        jurisdiction: str | None,
        dry_run: bool,
        who: Requester | None,
        reason: str,
    ) -> Receipt:
        catalog = self.parts.catalog
        names = list(sources)
        for name in names:
            self.parts.source(name)
        if jurisdiction:
            code = jurisdiction.strip().upper()
            names += [s.name for s in self.sources() if code in s.jurisdictions]
        missing = set(image_ids) - set(catalog.get_images(list(image_ids)))
        if missing:
            raise NotFound(f"no image with id {', '.join(map(str, sorted(missing)))}")
        if not (image_ids or names or jurisdiction):
            raise InvalidInput("say what to erase: image ids, sources or a jurisdiction")
        provenance = catalog.provenance_of(sources=names, image_ids=list(image_ids))
        scope = {
            "image_ids": sorted(image_ids),
            "sources": sorted(set(names)),
            "jurisdiction": jurisdiction,
            "reason": reason,
        }
        return self._remove(provenance, ErasureDone, scope, dry_run, who)

    def _remove(
        self,
        provenance: Sequence[int],
        event: type[RemovalEvent],
        scope: dict[str, Any],
        dry_run: bool,
        who: Requester | None,
    ) -> Receipt:
        """Remove these copies (and what only they held) and record the receipt."""
        catalog = self.parts.catalog
        uploads = self.parts.home / "uploads"
        # A video uploaded to the server goes with the last frame that names it.
        videos = {
            row["video"]
            for row in catalog.describe_provenance(provenance)
            if row.get("video") and Path(row["video"]).parent == uploads
        }

        def derived(removal: Removal) -> list[Path]:
            unused = [Path(v) for v in sorted(videos) if not catalog.video_in_use(v)]
            return self.derived_files(removal) + unused

        receipt = remove(
            catalog,
            self.parts.index,
            provenance,
            action=event.action,
            scope=scope,
            dry_run=dry_run,
            derived_files=derived,
        )
        self.parts.record(event(**receipt_details(receipt)), who)
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
        probe = self.searcher.probe(photo)
        index = chosen_face(probe, face)
        strict = self.parts.settings.governance.strict_threshold
        cut = strict if threshold is None else threshold
        result = self.searcher.search_vectors(
            probe.embeddings[index][None, :],
            probe_face=probe.faces[index],
            top_k=top_k,
            threshold=cut,
            probe_faces=probe.faces,
            who=who,
            probe_sha256=probe.sha256,
            audit=ErasureReviewed,
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
        probe = self.searcher.probe(photo)
        index = chosen_face(probe, face)
        suppression_id = self.parts.suppressions.add(
            probe.embeddings[index], self.parts.model.key, consent_ref, note
        )
        added = SuppressionAdded(suppression_id=suppression_id, consent_ref=consent_ref)
        self.parts.record(added, who)
        return suppression_id

    def remove_suppression(self, suppression_id: int, who: Requester | None = None) -> None:
        """Take a person off the suppression list: their faces are searchable again
        (NotFound when there is no such suppression)."""
        self.parts.suppressions.remove(suppression_id)
        self.parts.record(SuppressionRemoved(suppression_id=suppression_id), who)

    def access_request(
        self, photo: bytes | Probe, face: int | None = None, who: Requester | None = None
    ) -> dict[str, Any]:
        """Am I in here? The report for a data subject. The photo stays in memory."""
        probe = self.searcher.probe(photo)
        index = chosen_face(probe, face)
        strict = self.parts.settings.governance.strict_threshold
        request_id = uuid.uuid4().hex[:12]
        result = self.searcher.search_vectors(
            probe.embeddings[index][None, :],
            probe_face=probe.faces[index],
            top_k=1000,
            threshold=strict,
            probe_faces=probe.faces,
            who=who,
            probe_sha256=probe.sha256,
            audit=None,
            include_suppressed=True,
        )
        report = access_report(result, {s.name: s for s in self.sources()}, strict, request_id)
        # Only that it happened, a hash and the count: never the photo or its template.
        asked = AccessRequested(
            request_id=request_id, probe_sha256=probe.sha256, results=report["images_found"]
        )
        self.parts.record(asked, who)
        return report

    def access_request_by_url(
        self, url: str, *, prefix: bool = False, who: Requester | None = None
    ) -> dict[str, Any]:
        """Am I in here? asked by where the photos were published, with no photo: every
        image with a copy whose page or file URL is ``url`` (or lies under it, with
        ``prefix``; see governance/urls.py), including images withheld from searches by
        an objection. Nothing about the request is kept but its audit entry."""
        catalog = self.parts.catalog
        where = published_at(url, prefix=prefix)
        image_ids = catalog.images_published_at(where, limit=MAX_URL_REPORT_IMAGES)
        if len(image_ids) > MAX_URL_REPORT_IMAGES:
            raise InvalidInput(
                f"more than {MAX_URL_REPORT_IMAGES} images were published under {where.url}, "
                "too many for one report: give a narrower prefix"
            )
        images = catalog.get_images(image_ids)
        request_id = uuid.uuid4().hex[:12]
        report = access_report_by_url(
            [images[i] for i in image_ids if i in images],
            {s.name: s for s in self.sources()},
            where,
            request_id,
            catalog.model_key() or "",
        )
        # A keyed hash, not the address: a plain SHA-256 of a URL is undone by hashing
        # candidate URLs (every page_url in the catalog, say), which would make the log a
        # list of the profiles whose owners asked. The same address gives the same hash,
        # so a later request can be linked to this one.
        asked_by_url = AccessRequestedByUrl(
            request_id=request_id,
            match=where.kind,
            url_hash=self._url_hash(where.key),
            results=report["images_found"],
        )
        self.parts.record(asked_by_url, who)
        return report

    def _url_hash(self, key: str) -> str:
        """HMAC-SHA256 of a normalised URL under this home's own random key (made on
        first use, kept in the catalog)."""
        catalog = self.parts.catalog
        secret = catalog.meta("access_url_hash_key") or catalog.setdefault_meta(
            "access_url_hash_key", secrets.token_hex(32)
        )
        return hmac.new(bytes.fromhex(secret), key.encode(), hashlib.sha256).hexdigest()

    # -- accounts ----------------------------------------------------------------------
    def create_key(
        self, accounts: AccountStore, name: str, role: str, who: Requester | None = None
    ) -> tuple[KeyInfo, str]:
        """A new API key in ``accounts`` (the full key is returned once, never recorded)."""
        info, full = accounts.create_key(name, role)
        self.parts.record(KeyCreated(key_id=info.key_id, name=info.name, role=info.role.value), who)
        return info, full

    def revoke_key(
        self, accounts: AccountStore, key_id: str, who: Requester | None = None
    ) -> KeyInfo:
        """Revoke an API key in ``accounts`` (NotFound when there is none)."""
        info = accounts.revoke_key(key_id)
        self.parts.record(KeyRevoked(key_id=info.key_id, name=info.name, role=info.role.value), who)
        return info

    def add_user(
        self,
        accounts: AccountStore,
        username: str,
        password: str,
        role: str,
        who: Requester | None = None,
    ) -> None:
        """Add a web user to ``accounts``, or reset their password and role."""
        accounts.add_user(username, password, role)
        self.parts.record(UserAdded(username=username.strip(), role=role), who)

    # -- audit and transparency --------------------------------------------------------
    def verify_audit(self) -> Verification:
        return self.parts.audit.verify()

    def case_file(
        self, case_ref: str, who: Requester | None = None, format: str = "json"
    ) -> CaseFile:
        """Every search made under ``case_ref`` with its results and audit entries, and the
        log's verification; making it is itself recorded (``case.export``)."""
        ref = case_ref.strip()
        if not ref:
            raise InvalidInput("give the case reference whose file to make")
        who = who or self.parts.default_requester()
        entries = list(self.parts.audit.entries(case_ref=ref))
        if not entries:
            raise NotFound(f"no audit entry has the case reference {ref!r}")
        verification = self.parts.audit.verify()
        images = self.parts.catalog.get_images(casefile.result_ids(entries))
        case = casefile.build(
            ref,
            entries,
            images,
            verification,
            made_at=datetime.now(UTC).isoformat(timespec="seconds"),
            made_by=who.actor,
        )
        self.parts.record(
            CaseExported(
                case=ref, searches=len(case.searches), entries=len(entries), format=format
            ),
            who,
        )
        return case

    def export_audit(
        self, case_ref: str | None = None, who: Requester | None = None
    ) -> list[dict[str, Any]]:
        entries = [e.as_dict() for e in self.parts.audit.entries(case_ref=case_ref)]
        self.parts.record(AuditExported(case=case_ref, entries=len(entries)), who)
        return entries

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
        """Entries oldest first, filtered and paged by seq (``after``, ``limit``), or only
        the ``last`` ones; the read is itself recorded (``audit.read``)."""
        entries = list(
            self.parts.audit.entries(
                case_ref=case_ref, action=action, since=since, until=until, after=after, limit=limit
            )
        )
        if last is not None:
            entries = entries[-last:] if last > 0 else []
        self.parts.record(AuditRead(case=case_ref, action_filter=action, entries=len(entries)), who)
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
        for entry in self.parts.audit.entries(since=start, until=end):
            counts[entry.action] = counts.get(entry.action, 0) + 1
            if entry.action == SearchMade.action:
                key = entry.purpose or "(none given)"
                per_purpose[key] = per_purpose.get(key, 0) + 1
            elif entry.action in (ErasureDone.action, RetentionRun.action) and not (
                entry.details.get("dry_run")
            ):
                bucket = erased if entry.action == ErasureDone.action else expired
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
            "searches": counts.get(SearchMade.action, 0),
            "erasures": counts.get(ErasureDone.action, 0),
            "erased": erased,
            "retention_runs": counts.get(RetentionRun.action, 0),
            "expired": expired,
            "access_requests": counts.get(AccessRequested.action, 0),
            "suppressions_added": counts.get(SuppressionAdded.action, 0),
            "suppressions_on_file": self.parts.suppressions.count(),
            "people_grouping_runs": counts.get(PeopleGrouped.action, 0),
            "persons": len(self.parts.catalog.persons()),
        }


def receipt_details(receipt: Receipt) -> dict[str, Any]:
    """The receipt, as audit details (its action is the entry's own)."""
    return {k: v for k, v in receipt.as_dict().items() if k != "action"}
