"""Typed audit events: each becomes an entry with the action string logs have always held,
and its fields are the entry's details, as written before the events had classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import facesearch.domain as domain
from facesearch.catalog.sqlite_audit import SqliteAuditStore
from facesearch.domain import Event, Requester
from facesearch.governance.audit import AuditEvent, AuditLog

RECEIPT: dict[str, Any] = {
    "scope": {"expired_before": "2026-01-01T00:00:00+00:00"},
    "at": "2026-01-01T00:00:00+00:00",
    "dry_run": False,
    "provenance_removed": 2,
    "images_removed": 1,
    "faces_removed": 3,
    "image_ids": (7,),
    "image_sha256": ("ab" * 32,),
    "face_ids": (11, 12, 13),
    "files_deleted": 4,
    "receipt_id": "r-1",
    "index_erased_at": "2026-01-01T00:00:05+00:00",  # a server index's compaction finished
}
SEARCHED: dict[str, Any] = {
    "probe_sha256": "cd" * 32,
    "sources": ["press"],
    "top_k": 10,
    "threshold": 0.6,
    "results": 4,
    "likely_matches": 1,
}
MATCHED: list[list[Any]] = [[7, 11, 0.9712, "strong"], [8, 12, 0.88, "chance"]]
# Every event, with the action and details entries had before events were typed (user.add
# is new: users were not audited before).
EVENTS: list[tuple[str, Event, dict[str, Any]]] = [
    # Searches record more since results carry chance figures (added keys, none renamed).
    (
        "search",
        domain.SearchMade(
            **SEARCHED, probes=2, probe_face_ids=[5], faces_searched=300, matched=MATCHED
        ),
        SEARCHED | {"probes": 2, "probe_face_ids": [5], "faces_searched": 300, "matched": MATCHED},
    ),
    ("erasure.review", domain.ErasureReviewed(**SEARCHED), SEARCHED),
    (
        "case.export",
        domain.CaseExported(case="C-12", searches=2, entries=5, format="pdf"),
        {"case": "C-12", "searches": 2, "entries": 5, "format": "pdf"},
    ),
    (
        "ingest.batch",
        domain.IngestBatch(source="press", images=["a"], copies=["b", "c"]),
        {"source": "press", "images": ["a"], "copies": ["b", "c"]},
    ),
    (
        "ingest",
        domain.IngestDone("press", 5, 3, 1, 4, 1, 1, False),
        {
            "source": "press",
            "files": 5,
            "images_added": 3,
            "copies_added": 1,
            "faces_indexed": 4,
            "faces_suppressed": 1,
            "failures": 1,
            "interrupted": False,
        },
    ),
    (
        "source.add",
        domain.SourceAdded(source="press", policy={"retention_days": 30}),
        {"source": "press", "policy": {"retention_days": 30}},
    ),
    (
        "source.update",
        domain.SourceUpdated(source="press", changes=["notes"], policy={"notes": "x"}),
        {"source": "press", "changes": ["notes"], "policy": {"notes": "x"}},
    ),
    ("retention", domain.RetentionRun(**RECEIPT), RECEIPT),
    ("erasure", domain.ErasureDone(**RECEIPT), RECEIPT),
    (
        "suppression.add",
        domain.SuppressionAdded(suppression_id=3, consent_ref="objection-1"),
        {"suppression_id": 3, "consent_ref": "objection-1"},
    ),
    ("suppression.remove", domain.SuppressionRemoved(suppression_id=3), {"suppression_id": 3}),
    (
        "access_request",
        domain.AccessRequested(request_id="q1", probe_sha256="ef" * 32, results=2),
        {"request_id": "q1", "probe_sha256": "ef" * 32, "results": 2},
    ),
    (
        "access_request",
        domain.AccessRequestedByUrl(request_id="q2", match="prefix", url_hash="01", results=0),
        {"request_id": "q2", "match": "prefix", "url_hash": "01", "results": 0},
    ),
    (
        "audit.export",
        domain.AuditExported(case=None, entries=9),
        {"case": None, "entries": 9},
    ),
    (
        "audit.read",
        domain.AuditRead(case="C-1", action_filter="search", entries=2),
        {"case": "C-1", "action_filter": "search", "entries": 2},
    ),
    (
        "audit.key",
        domain.AuditKeyed(fingerprint="0123", unkeyed_entries=4),
        {"fingerprint": "0123", "unkeyed_entries": 4},
    ),
    (
        "key.create",
        domain.KeyCreated(key_id="k1", name="ci", role="search"),
        {"key_id": "k1", "name": "ci", "role": "search"},
    ),
    (
        "key.revoke",
        domain.KeyRevoked(key_id="k1", name="ci", role="search"),
        {"key_id": "k1", "name": "ci", "role": "search"},
    ),
    (
        "user.add",
        domain.UserAdded(username="ada", role="auditor"),
        {"username": "ada", "role": "auditor"},
    ),
    (
        "model.change",
        domain.ModelChanged(
            previous_model="a@1/128/cosine", model="b@2/512/cosine", images=3, faces=4
        ),
        {"previous_model": "a@1/128/cosine", "model": "b@2/512/cosine", "images": 3, "faces": 4},
    ),
    # People (new with grouping into persons: no entries before them).
    (
        "search.person",
        domain.PersonSearched(**SEARCHED, person=3, probes=5),
        {**SEARCHED, "person": 3, "probes": 5},
    ),
    (
        "people.group",
        domain.PeopleGrouped(
            sources=["album"], faces=9, grouped=6, new_persons=2, ungrouped=0, full=False
        ),
        {
            "sources": ["album"],
            "faces": 9,
            "grouped": 6,
            "new_persons": 2,
            "ungrouped": 0,
            "full": False,
        },
    ),
    (
        "person.edit",
        domain.PersonEdited(person=3, change="merge", faces=[7, 8], merged=[4]),
        {"person": 3, "change": "merge", "faces": [7, 8], "merged": [4]},
    ),
]


class Anchor:
    def __init__(self) -> None:
        self.value: str | None = None

    def get(self) -> str | None:
        return self.value

    def set(self, value: str) -> None:
        self.value = value

    def replace(self, old: str, new: str) -> None:
        if self.value == old:
            self.value = new


def event_classes() -> set[type[Event]]:
    found = set()
    for value in vars(domain).values():
        if isinstance(value, type) and issubclass(value, Event) and "action" in vars(value):
            found.add(value)
    return found


def test_every_event_class_is_covered_here() -> None:
    """A new event (or a renamed action) must be added to EVENTS with what it records."""
    assert {type(e) for _, e, _ in EVENTS} == event_classes()


@pytest.mark.parametrize(("action", "event", "details"), EVENTS, ids=lambda v: str(v)[:24])
def test_an_event_becomes_an_entry_with_its_action_and_details(
    tmp_path: Path, action: str, event: Event, details: dict[str, Any]
) -> None:
    log = AuditLog(SqliteAuditStore(tmp_path / "audit.sqlite"), Anchor())
    who = Requester(actor="api:key1", purpose="fraud inquiry", case_ref="C-1")
    # What the engine wrote before events were typed: the same action, the same details.
    log.append(AuditEvent(action, who.actor, who.purpose, who.case_ref, details))
    written = log.append(AuditEvent.of(event, who))
    assert type(event).action == written.action == action
    [old, new] = log.entries()
    assert (new.action, new.actor, new.purpose, new.case_ref) == (
        action,
        "api:key1",
        "fraud inquiry",
        "C-1",
    )
    assert new.details == old.details == json.loads(json.dumps(details))
    # (an audit.key entry in a log that has no key is, rightly, not accepted)
    assert log.verify().ok or action == "audit.key"
    log.close()
