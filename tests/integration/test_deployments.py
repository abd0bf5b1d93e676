"""One behaviour, two deployments: the same scenarios on SQLite + the local index and on
PostgreSQL + Milvus give the same answers.

Each deployment ingests the same real photos once (module scope, dlib). Every scenario
turns what a user sees into plain data (ranked image ids and scores, receipts' counts,
the images an access request finds...), checks it, and records it; the second
deployment's answer must equal the first's (scores to 1e-4). The scenarios run in file
order on one engine per deployment, so the removals come last and touch disjoint sources.
The comparison needs both deployments in one run (pytest runs the embedded one first);
selecting one alone (``-m postgres``) still checks its own answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from facesearch import FaceSearch, Settings
from facesearch.ingest.report import IngestReport

from ..conftest import register

EX = "face_recognition/examples"
OBAMA = [f"{EX}/obama.jpg", f"{EX}/obama-480p.jpg", f"{EX}/knn_examples/test/obama1.jpg"]
BIDEN = [f"{EX}/biden.jpg", f"{EX}/knn_examples/train/biden/biden2.jpg"]
PEOPLE = [  # two photos each of two people, in a source that groups people
    f"{EX}/knn_examples/train/kit_harington/john1.jpeg",
    f"{EX}/knn_examples/train/kit_harington/john2.jpeg",
    f"{EX}/knn_examples/train/rose_leslie/img1.jpg",
    f"{EX}/knn_examples/train/rose_leslie/img2.jpg",
]
OLD = [f"{EX}/knn_examples/train/alex_lacamoire/img1.jpg"]
OBAMA_PROBE = f"{EX}/obama2.jpg"  # not in the collection
EMBEDDED, SERVERS = "embedded", "postgres+milvus"

# scenario -> deployment -> answer (plain data)
ANSWERS: dict[str, dict[str, Any]] = {}


@dataclass
class Deployment:
    kind: str
    fs: FaceSearch
    dev: Path
    reports: dict[str, list[IngestReport]] = field(default_factory=dict)

    def photo(self, rel: str) -> Path:
        return self.dev / rel


def settings(kind: str, home: Path) -> Settings:
    if kind == EMBEDDED:
        return Settings(home=home, workers=1)
    from ..engines import milvus, postgres

    stamp = time.time_ns()
    catalog = postgres.database(f"deployments_{stamp}")
    index = milvus.server().collection(f"deployments_{stamp}")
    return Settings(home=home, workers=1, catalog={"url": catalog}, index={"url": index})  # type: ignore[arg-type]


@pytest.fixture(
    scope="module",
    params=[
        EMBEDDED,
        pytest.param(SERVERS, marks=[pytest.mark.postgres, pytest.mark.milvus]),
    ],
)
def deployment(
    request: pytest.FixtureRequest, dev: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    kind: str = request.param
    home = tmp_path_factory.mktemp("deployment") / "home"
    with FaceSearch(settings(kind, home)) as fs:
        d = Deployment(kind, fs, dev)
        register(fs, "press", "case", "copies")
        register(fs, "people", group_people=True)
        register(fs, "old", retention_days=30)
        photos = [d.photo(p) for p in OBAMA]
        d.reports["press"] = [fs.ingest(photos, source="press"), fs.ingest(photos, source="press")]
        d.reports["case"] = [fs.ingest([d.photo(p) for p in BIDEN], source="case")]
        d.reports["copies"] = [fs.ingest(photos[:1], source="copies")]
        d.reports["people"] = [fs.ingest([d.photo(p) for p in PEOPLE], source="people")]
        d.reports["old"] = [fs.ingest([d.photo(p) for p in OLD], source="old")]
        yield d


def same(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-4."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and abs(a - b) <= 1e-4
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def agree(scenario: str, d: Deployment, answer: Any) -> None:
    """Record ``answer``; the other deployment's, when it ran, must be the same."""
    seen = ANSWERS.setdefault(scenario, {})
    seen[d.kind] = answer
    if len(seen) == 2:
        assert same(seen[EMBEDDED], seen[SERVERS]), (seen[EMBEDDED], seen[SERVERS])


def ranked(d: Deployment, photo: str, sources: list[str] | None = None) -> list[Any]:
    [result] = d.fs.search(d.photo(photo), top_k=10, sources=sources)
    return [
        (m.image.id, m.similarity, m.is_match, [(c.image.id, c.similarity) for c in m.copies])
        for m in result.matches
    ]


def images_in(rows: list[Any], matches_only: bool = False) -> set[int]:
    """The images of these result rows, the copies folded into a row included."""
    return {
        i
        for image, _, match, copies in rows
        if match or not matches_only
        for i in [image, *(c for c, _ in copies)]
    }


def likely(d: Deployment, photo: str) -> set[int]:
    return images_in(ranked(d, photo), matches_only=True)


def receipt(r: Any) -> dict[str, Any]:
    return {
        "provenance": r.provenance_removed,
        "images": r.images_removed,
        "faces": r.faces_removed,
        "image_ids": sorted(r.image_ids),
        "face_ids": sorted(r.face_ids),
    }


def ids(d: Deployment, source: str) -> list[int]:
    return sorted(i.id for i in d.fs.list_images(source=source))


# -- the scenarios, in order -----------------------------------------------------------
def test_ingest_with_duplicates(deployment: Deployment) -> None:
    """The same files twice are unchanged; a copy in another source is one image with two
    copies, not a second image."""
    d = deployment
    # Each deployment is what it says: the servers' has no SQLite catalog and a Milvus index.
    servers = d.kind == SERVERS
    assert (d.fs.home / "catalog.sqlite").exists() != servers
    assert d.fs.stats()["index"]["kind"].startswith("milvus") == servers
    reports = {
        source: [(r.images_added, r.copies_added, r.unchanged, r.faces_indexed) for r in rs]
        for source, rs in d.reports.items()
    }
    assert reports["press"] == [(3, 0, 0, 3), (0, 0, 3, 0)]
    assert reports["copies"] == [(0, 1, 0, 0)]
    [copied] = ids(d, "copies")
    image = d.fs.show(copied)
    copies = sorted(p.source for p in image.provenance)
    assert copies == ["copies", "press"]
    answer = {
        "reports": reports,
        "images": {s: ids(d, s) for s in d.reports},
        "copies": copies,
        "stats": {k: d.fs.stats()[k] for k in ("images", "faces")},
    }
    agree("ingest", d, answer)


def search_answers(d: Deployment) -> dict[str, Any]:
    filters: list[list[str] | None] = [None, ["press"], ["case"], ["copies"], ["press", "case"]]
    return {
        f"{photo} {sources}": ranked(d, photo, sources)
        for photo in (OBAMA_PROBE, BIDEN[1])
        for sources in filters
    }


def test_search_with_source_filters(deployment: Deployment) -> None:
    d = deployment
    answer = search_answers(d)
    press, copies = set(ids(d, "press")), set(ids(d, "copies"))
    assert images_in(answer[f"{OBAMA_PROBE} None"], matches_only=True) == press
    assert images_in(answer[f"{OBAMA_PROBE} ['copies']"]) == copies
    assert images_in(answer[f"{BIDEN[1]} ['press']"]) <= press
    agree("search", d, answer)


def test_suppression_hides_the_person_from_search(deployment: Deployment) -> None:
    d = deployment
    before = likely(d, BIDEN[1])
    sid = d.fs.suppress(d.photo(BIDEN[0]), consent_ref="objection-1")
    try:
        during = likely(d, BIDEN[1])
        obama = likely(d, OBAMA_PROBE)
    finally:
        d.fs.remove_suppression(sid)
    after = likely(d, BIDEN[1])
    assert before == set(ids(d, "case")) == after
    assert during == set()
    assert obama == set(ids(d, "press"))
    agree("suppression", d, {"before": sorted(before), "during": sorted(during)})


def test_access_request_finds_the_same_images(deployment: Deployment) -> None:
    d = deployment
    report = d.fs.access_request(d.photo(OBAMA_PROBE).read_bytes())
    found = sorted(
        (img["image_id"], sorted(c["source"] for c in img["copies"])) for img in report["images"]
    )
    assert report["images_found"] == len(found) == 3
    assert [i for i, _ in found] == ids(d, "press")
    agree("access", d, found)


def test_reindex_rebuilds_the_index_from_the_catalog(deployment: Deployment) -> None:
    d = deployment
    before = search_answers(d)
    d.fs.reindex()
    after = search_answers(d)
    assert same(before, after)
    assert d.fs.stats()["index"]["consistent"]
    agree("reindex", d, after)


def test_erasure_by_image(deployment: Deployment) -> None:
    d = deployment
    [first, _] = ids(d, "case")
    r = d.fs.erase(image_ids=[first], reason="a subject's request")
    assert (r.images_removed, r.faces_removed) == (1, 1)
    assert first not in likely(d, BIDEN[1])
    agree("erase-image", d, {"receipt": receipt(r), "case": ids(d, "case")})


def test_erasure_by_source(deployment: Deployment) -> None:
    """Erasing the source of a copy removes the copy, not the image the press also holds."""
    d = deployment
    [copied] = ids(d, "copies")
    r = d.fs.erase(sources=["copies"], reason="source withdrawn")
    assert (r.provenance_removed, r.images_removed, r.faces_removed) == (1, 0, 0)
    assert copied in likely(d, OBAMA_PROBE)
    agree("erase-source", d, {"receipt": receipt(r), "press": ids(d, "press")})


def test_erasure_by_person(deployment: Deployment) -> None:
    d = deployment
    persons = sorted(d.fs.persons(), key=lambda p: min(p.images))
    groups = [sorted(p.images) for p in persons]
    assert len(groups) == 2 and all(len(g) == 2 for g in groups)
    review = d.fs.review_person(persons[0].id)
    images = sorted({m.image.id for m in review.matches})
    assert images == groups[0]
    r = d.fs.erase(image_ids=images, reason="a person's request")
    assert (r.images_removed, r.faces_removed) == (2, 2)
    assert ids(d, "people") == groups[1]
    # The erased person is gone from search; the other one is still found.
    assert likely(d, PEOPLE[0]) | likely(d, PEOPLE[2]) == set(groups[1])
    agree("erase-person", d, {"groups": groups, "receipt": receipt(r), "left": ids(d, "people")})


def test_retention_expiry(deployment: Deployment) -> None:
    """Sixty days on, the 30-day source has expired and nothing else."""
    d = deployment
    now = datetime.now(UTC)
    assert d.fs.run_retention(at=now).images_removed == 0
    old = ids(d, "old")
    r = d.fs.run_retention(at=now + timedelta(days=60))
    assert r.image_ids == tuple(old) and r.images_removed == 1
    assert ids(d, "old") == []
    agree("retention", d, receipt(r))


def test_audit_verifies_intact(deployment: Deployment) -> None:
    d = deployment
    check = d.fs.verify_audit()
    assert check.ok, check.problem
    actions = [e.action for e in d.fs.read_audit(limit=1000)]
    agree("audit", d, {"ok": check.ok, "actions": sorted(actions)})
