"""The Catalog port's contract (``facesearch.catalog.ports.Catalog``), run against every
catalog adapter in ``adapters.CATALOGS``, plain and sealed (templates encrypted at rest).

What the engine relies on: one image per distinct content, with one provenance row per copy
(source, path, URLs, capture date, expiry from the source's retention); paging and filters
in id order; embeddings back exactly as given; a removal that says what went (and keeps an
image another source still holds); a scrub after which no erased template is left in what
the store keeps; writers in several threads and processes that lose and duplicate nothing.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facesearch.catalog.ports import Catalog, FileStamp, NewImage
from facesearch.domain import BoundingBox, DetectedFace, Provenance, Source
from facesearch.errors import InvalidInput, NotFound
from facesearch.governance.retention import expiry_rule, stamp, subject_to_retention
from facesearch.governance.urls import published_at

from ..synthetic import clustered
from .adapters import CATALOGS, params

VECTORS = clustered(400, 5)
FACES_PER_IMAGE = 2


def source(name: str, retention_days: int = 30, legal_hold: bool = False) -> Source:
    return Source(
        name=name,
        lawful_basis="legitimate_interests",
        special_category_condition="manifestly_public",
        retention_days=retention_days,
        description=f"{name} photos",
        jurisdictions=("GB",),
        legal_hold=legal_hold,
    )


def image(n: int, faces: int = FACES_PER_IMAGE) -> NewImage:
    """Synthetic image ``n``: its own content hash and ``faces`` faces, largest first."""
    detected = [
        DetectedFace(
            box=BoundingBox(10 * i, 10 * i, 10 * i + 100 - 10 * i, 10 * i + 120 - 10 * i),
            score=0.9 - 0.1 * i,
            landmarks=((30.5 + i, 40.0), (70.0, 40.5), (50.0, 60.0), (35.0, 80.0), (65.0, 80.0)),
            sharpness=12.5 + i,
        )
        for i in range(faces)
    ]
    start = (n * FACES_PER_IMAGE) % len(VECTORS)
    return NewImage(
        sha256=f"{n:064x}",
        width=640,
        height=480,
        format="jpeg",
        bytes=1000 + n,
        faces=detected,
        embeddings=VECTORS[start : start + faces],
    )


# The retention periods the fixture registers: a catalog stores the dates it is given, so
# each copy is stamped by the one rule (governance.retention) before it is handed over.
RETENTION = {"news": 30, "archive": 365, "held": 1}


def copy(src: str, n: int, **urls: str | None) -> Provenance:
    return dated(Provenance(source=src, path=f"{src}/img{n}.jpg", **urls))


def dated(provenance: Provenance) -> Provenance:
    return stamp(provenance, RETENTION.get(provenance.source, 30))


@pytest.fixture(params=params(CATALOGS))
def adapter(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "catalog"


@pytest.fixture
def catalog(adapter: str, folder: Path) -> Iterator[Catalog]:
    opened = CATALOGS[adapter].open(folder)
    opened.add_source(source("news"))
    opened.add_source(source("archive", retention_days=365))
    yield opened
    opened.close()


# -- meta and model key -------------------------------------------------------------------
def test_meta_is_kept_and_setdefault_keeps_the_first_value(
    adapter: str, folder: Path, catalog: Catalog
) -> None:
    assert catalog.meta("colour") is None
    catalog.set_meta("colour", "blue")
    catalog.set_meta("colour", "green")
    assert catalog.meta("colour") == "green"
    assert catalog.setdefault_meta("shape", "round") == "round"
    assert catalog.setdefault_meta("shape", "square") == "round"
    assert catalog.model_key() is None
    catalog.set_model_key("dlib-resnet-v1:128")
    other = CATALOGS[adapter].open(folder)  # another connection sees it all
    try:
        assert other.setdefault_meta("shape", "square") == "round"
        assert (other.meta("colour"), other.model_key()) == ("green", "dlib-resnet-v1:128")
    finally:
        other.close()


def test_replace_meta_sets_a_value_only_if_it_is_still_the_old_one(
    adapter: str, folder: Path, catalog: Catalog
) -> None:
    """The audit log's anchor moves by compare-and-set: a writer that lost the race to
    another one must not move it back."""
    catalog.set_meta("head", "1:aaa:pending")
    assert catalog.replace_meta("head", "1:aaa:pending", "1:aaa")
    assert catalog.meta("head") == "1:aaa"
    other = CATALOGS[adapter].open(folder)  # another process moved on meanwhile
    try:
        other.set_meta("head", "2:bbb:pending")
        assert not catalog.replace_meta("head", "1:aaa:pending", "1:aaa")
        assert other.meta("head") == "2:bbb:pending"
    finally:
        other.close()
    assert not catalog.replace_meta("absent", "x", "y")
    assert catalog.meta("absent") is None


# -- sources ------------------------------------------------------------------------------
def test_sources_are_added_listed_and_updated(catalog: Catalog) -> None:
    news = catalog.get_source("news")
    assert news is not None and news.policy() == source("news").policy()
    assert news.created_at and news.counts == {"images": 0, "faces": 0}
    assert [s.name for s in catalog.list_sources()] == ["archive", "news"]
    assert catalog.get_source("nobody") is None
    with pytest.raises(InvalidInput):
        catalog.add_source(source("news"))
    catalog.add_image(image(1), copy("news", 1, captured_at="2026-01-01T00:00:00+00:00"), None)
    updated = catalog.update_source(
        source("news", retention_days=10, legal_hold=True), expiry_rule(10)
    )
    assert (updated.retention_days, updated.legal_hold) == (10, True)
    assert updated.counts == {"images": 1, "faces": FACES_PER_IMAGE}
    # The expiry of what the source holds follows its new retention period.
    (record,) = catalog.get_images([catalog.list_image_ids()[0]]).values()
    assert record.provenance[0].expires_at == "2026-01-11T00:00:00+00:00"


# -- images, duplicates and provenance ----------------------------------------------------
def test_an_image_is_stored_with_its_faces_and_provenance(catalog: Catalog) -> None:
    new = image(1)
    where = copy(
        "news",
        1,
        source_url="https://cdn.example.com/1.jpg",
        page_url="https://example.com/story/1",
        captured_at="2026-03-01T12:00:00+00:00",
    )
    image_id, face_ids, created = catalog.add_image(new, where, FileStamp(1001, 5))
    assert created and len(face_ids) == FACES_PER_IMAGE
    assert catalog.image_id_by_sha(new.sha256) == image_id
    record = catalog.get_images([image_id])[image_id]
    assert (record.sha256, record.width, record.height, record.format, record.bytes) == (
        new.sha256,
        640,
        480,
        "jpeg",
        1001,
    )
    assert [f.id for f in record.faces] == face_ids
    assert [f.box for f in record.faces] == [f.box for f in new.faces]
    assert [f.landmarks for f in record.faces] == [f.landmarks for f in new.faces]
    assert [f.size for f in record.faces] == [f.size for f in new.faces]
    (prov,) = record.provenance
    assert (prov.source, prov.path, prov.source_url, prov.page_url, prov.captured_at) == (
        "news",
        "news/img1.jpg",
        "https://cdn.example.com/1.jpg",
        "https://example.com/story/1",
        "2026-03-01T12:00:00+00:00",
    )
    assert prov.ingested_at and prov.expires_at == "2026-03-31T12:00:00+00:00"


def test_the_perceptual_hash_is_kept_and_may_be_absent(catalog: Catalog) -> None:
    """Search folds copies of one photo by the hash ingest computed (None: not computed)."""
    hashed, _, _ = catalog.add_image(
        replace(image(1), phash="c3a51e0f0f1e5ac3"), copy("news", 1), None
    )
    bare, _, _ = catalog.add_image(image(2), copy("news", 2), None)
    got = catalog.get_images([hashed, bare])
    assert (got[hashed].phash, got[bare].phash) == ("c3a51e0f0f1e5ac3", None)


def test_the_same_content_twice_is_one_image_with_two_provenance_rows(catalog: Catalog) -> None:
    first, faces, created = catalog.add_image(image(1), copy("news", 1), None)
    again, more, created_again = catalog.add_image(
        image(1), copy("archive", 9, page_url="https://example.org/p/9"), None
    )
    assert (again, more, created, created_again) == (first, [], True, False)
    record = catalog.get_images([first])[first]
    assert [p.source for p in record.provenance] == ["news", "archive"]
    assert [f.id for f in record.faces] == faces
    stats = catalog.stats()
    assert (stats["images"], stats["faces"], stats["provenance"]) == (1, FACES_PER_IMAGE, 2)
    # The same copy seen again adds no row; what it newly tells (a URL) is kept.
    assert not catalog.add_provenance(first, copy("news", 1, source_url="https://a.b/1"), None)
    assert catalog.add_provenance(first, copy("news", 2), None)
    provs = catalog.get_images([first])[first].provenance
    assert [(p.source, p.path, p.source_url) for p in provs] == [
        ("news", "news/img1.jpg", "https://a.b/1"),
        ("archive", "archive/img9.jpg", None),
        ("news", "news/img2.jpg", None),
    ]


def test_an_unregistered_source_is_refused_and_nothing_is_stored(catalog: Catalog) -> None:
    with pytest.raises(NotFound):
        catalog.add_image(image(1), copy("nobody", 1), None)
    assert catalog.stats()["images"] == 0 and catalog.image_id_by_sha(image(1).sha256) is None


def test_seen_file_knows_a_file_by_source_path_size_and_mtime(catalog: Catalog) -> None:
    catalog.add_image(image(1), copy("news", 1), FileStamp(1001, 77))
    assert catalog.seen_file("news", "news/img1.jpg", FileStamp(1001, 77))
    assert not catalog.seen_file("news", "news/img1.jpg", FileStamp(1001, 78))
    assert not catalog.seen_file("news", "news/img1.jpg", FileStamp(1002, 77))
    assert not catalog.seen_file("archive", "news/img1.jpg", FileStamp(1001, 77))


def test_failures_are_recorded_once_per_file_and_cleared_by_success(catalog: Catalog) -> None:
    catalog.record_failure("news", "news/img1.jpg", "truncated")
    catalog.record_failure("news", "news/img1.jpg", "still truncated")
    catalog.record_failure("archive", "archive/x.png", "not an image")
    failures = catalog.failures()
    assert [(f["source"], f["path"], f["reason"]) for f in failures] == [
        ("news", "news/img1.jpg", "still truncated"),
        ("archive", "archive/x.png", "not an image"),
    ]
    assert catalog.stats()["failures"] == 2 and len(catalog.failures(limit=1)) == 1
    catalog.add_image(image(1), copy("news", 1), None)
    assert [f["path"] for f in catalog.failures()] == ["archive/x.png"]


def test_failures_are_listed_by_source(catalog: Catalog) -> None:
    catalog.record_failure("news", "news/a.jpg", "truncated")
    catalog.record_failure("archive", "archive/x.png", "not an image")
    catalog.record_failure("news", "news/b.jpg", "no faces")
    assert [f["path"] for f in catalog.failures(source="news")] == ["news/a.jpg", "news/b.jpg"]
    assert [f["path"] for f in catalog.failures(source="archive")] == ["archive/x.png"]
    assert catalog.failures(source="other") == []


# -- reads: paging, filters, lookups ------------------------------------------------------
def test_image_ids_page_in_id_order_and_filter_by_source(catalog: Catalog) -> None:
    ids = [
        catalog.add_image(image(n), copy("news" if n % 2 else "archive", n), None)[0]
        for n in range(1, 8)
    ]
    pages, after = [], 0
    while page := catalog.list_image_ids(after=after, limit=3):
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [3, 3, 1] and [i for p in pages for i in p] == sorted(ids)
    news = [i for n, i in zip(range(1, 8), ids, strict=True) if n % 2]
    assert catalog.list_image_ids(limit=50, source="news") == news
    assert catalog.list_image_ids(after=news[0], limit=2, source="news") == news[1:3]
    assert set(catalog.get_images(ids[:2])) == set(ids[:2])
    assert catalog.get_images([]) == {} and catalog.get_images([10_000]) == {}


def test_images_published_at_a_page_or_under_a_prefix(catalog: Catalog) -> None:
    urls: dict[int, dict[str, str | None]] = {
        1: dict(page_url="https://example.com/u/alice/photos/1"),
        2: dict(source_url="http://EXAMPLE.com:80/u/alice/"),
        3: dict(page_url="https://example.com/u/alicia"),
        4: dict(page_url=None),
    }
    ids = {n: catalog.add_image(image(n), copy("news", n, **u), None)[0] for n, u in urls.items()}
    prefix = published_at("https://example.com/u/alice", prefix=True)
    assert catalog.images_published_at(prefix) == sorted([ids[1], ids[2]])
    assert catalog.images_published_at(published_at("https://example.com/u/alice")) == [ids[2]]
    assert len(catalog.images_published_at(published_at("https://example.com", prefix=True))) == 3
    assert catalog.images_published_at(published_at("https://other.org", prefix=True)) == []


def test_faces_map_to_images_and_face_ids_filter_by_source(catalog: Catalog) -> None:
    a, faces_a, _ = catalog.add_image(image(1), copy("news", 1), None)
    b, faces_b, _ = catalog.add_image(image(2), copy("archive", 2), None)
    catalog.add_provenance(b, copy("news", 3), None)  # b is in both sources
    assert catalog.faces_to_images([*faces_a, faces_b[0], 10_000]) == {
        **dict.fromkeys(faces_a, a),
        faces_b[0]: b,
    }
    assert catalog.face_ids().tolist() == sorted(faces_a + faces_b)
    assert catalog.face_ids(["archive"]).tolist() == sorted(faces_b)
    assert catalog.face_ids(["news"]).tolist() == sorted(faces_a + faces_b)
    assert catalog.face_ids(["nobody"]).tolist() == []
    _, faces_c, _ = catalog.add_image(image(3), copy("archive", 4), None)
    assert catalog.face_ids(["archive"]).tolist() == sorted(faces_b + faces_c), "not stale"


def test_embeddings_come_back_exactly_as_given(
    adapter: str, folder: Path, catalog: Catalog
) -> None:
    given: dict[int, np.ndarray] = {}
    for n in range(1, 6):
        new = image(n)
        _, face_ids, _ = catalog.add_image(new, copy("news", n), None)
        given.update(zip(face_ids, new.embeddings, strict=True))
    ids = sorted(given)
    asked = [ids[3], ids[0], ids[7]]  # any order: rows come back in the order asked
    got = catalog.embeddings(asked)
    assert got.dtype == np.float32 and np.array_equal(got, np.stack([given[i] for i in asked]))
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    seen_ids, seen = [], []
    for batch_ids, batch in catalog.iter_embeddings(batch=3):
        assert len(batch_ids) <= 3
        seen_ids += batch_ids.tolist()
        seen.append(batch)
    assert seen_ids == ids
    assert np.array_equal(np.concatenate(seen), np.stack([given[i] for i in ids]))
    stored = CATALOGS[adapter].stored(folder)
    if CATALOGS[adapter].sealed:  # a stolen copy of the store holds no template
        for vector in given.values():
            assert vector.tobytes() not in stored
            assert vector[:8].tobytes() not in stored
    reopened = CATALOGS[adapter].open(folder)
    try:
        assert np.array_equal(reopened.embeddings(asked), got)
    finally:
        reopened.close()


def test_face_state_and_stats_count_what_is_stored(catalog: Catalog) -> None:
    assert catalog.face_state() == (0, 0)
    all_faces: list[int] = []
    for n in range(1, 4):
        all_faces += catalog.add_image(image(n), copy("news", n), None)[1]
    catalog.add_image(image(4, faces=0), copy("archive", 4), None)
    catalog.add_image(image(1), copy("archive", 1), None)  # a duplicate: no new face
    assert catalog.face_state() == (len(all_faces), sum(all_faces))
    assert catalog.stats() == {
        "images": 4,
        "faces": 3 * FACES_PER_IMAGE,
        "provenance": 5,
        "sources": 2,
        "failures": 0,
        "images_without_faces": 1,
    }


# -- retention and removal ----------------------------------------------------------------
def test_expired_provenance_follows_retention_and_spares_legal_hold(catalog: Catalog) -> None:
    catalog.add_source(source("held", retention_days=1, legal_hold=True))
    old = "2020-01-01T00:00:00+00:00"
    ids = {}
    for n, src in enumerate(["news", "archive", "held"], start=1):
        ids[src] = catalog.add_image(image(n), copy(src, n, captured_at=old), None)[0]
    catalog.add_image(image(9), copy("news", 9), None)  # captured now: not expired
    now = datetime.now(UTC)
    covered = subject_to_retention(catalog.list_sources())  # the held source is not named
    expired = catalog.expired_provenance(now.isoformat(timespec="seconds"), covered)
    assert catalog.describe_provenance(expired)[0]["image_id"] == ids["news"]
    assert [d["source"] for d in catalog.describe_provenance(expired)] == ["news", "archive"]
    assert catalog.expired_provenance("2020-01-15T00:00:00+00:00", covered) == []  # 30 days
    assert len(catalog.expired_provenance("2020-02-01T00:00:00+00:00", covered)) == 1
    later = (now + timedelta(days=400)).isoformat(timespec="seconds")
    assert len(catalog.expired_provenance(later, covered)) == 3  # all but the held one
    assert len(catalog.expired_provenance(later, [*covered, "held"])) == 4


def test_provenance_of_sources_and_images_and_its_description(catalog: Catalog) -> None:
    a = catalog.add_image(image(1), copy("news", 1), None)[0]
    b = catalog.add_image(image(2), copy("archive", 2), None)[0]
    catalog.add_provenance(b, copy("news", 3), None)
    news = catalog.provenance_of(sources=["news"])
    assert len(news) == 2
    assert catalog.provenance_of(image_ids=[b]) == sorted(catalog.provenance_of(image_ids=[b]))
    assert len(catalog.provenance_of(image_ids=[b])) == 2
    assert len(catalog.provenance_of(sources=["archive"], image_ids=[a])) == 2
    assert catalog.provenance_of(sources=["nobody"]) == []
    described = catalog.describe_provenance(news)
    assert [(d["image_id"], d["source"], d["path"], d["sha256"]) for d in described] == [
        (a, "news", "news/img1.jpg", image(1).sha256),
        (b, "news", "news/img3.jpg", image(2).sha256),
    ]
    assert all(d["expires_at"] for d in described)
    assert [d["provenance_id"] for d in described] == news


def test_removal_takes_images_left_without_provenance_and_says_what_went(
    catalog: Catalog,
) -> None:
    shared, shared_faces, _ = catalog.add_image(image(1), copy("news", 1), None)
    catalog.add_image(image(1), copy("archive", 1), None)
    alone, alone_faces, _ = catalog.add_image(image(2), copy("news", 2), None)
    kept, kept_faces, _ = catalog.add_image(image(3), copy("archive", 3), None)
    removal = catalog.remove_provenance(catalog.provenance_of(sources=["news"]))
    assert removal.provenance == 2
    assert removal.images == ((alone, image(2).sha256),)
    assert removal.face_ids == tuple(sorted(alone_faces))
    # The image another source still holds stays, with its faces and that provenance.
    record = catalog.get_images([shared, alone])
    assert set(record) == {shared}
    assert [p.source for p in record[shared].provenance] == ["archive"]
    assert catalog.face_ids().tolist() == sorted(shared_faces + kept_faces)
    assert catalog.face_state() == (4, sum(shared_faces + kept_faces))
    assert catalog.image_id_by_sha(image(2).sha256) is None
    assert catalog.faces_to_images(alone_faces) == {}
    assert catalog.list_image_ids(source="news") == []
    assert catalog.stats()["images"] == 2 and kept in catalog.get_images([kept])
    again = catalog.remove_provenance(catalog.provenance_of(sources=["news"]))
    assert (again.images, again.face_ids) == ((), ())


def test_scrub_leaves_no_erased_template_in_the_store(
    adapter: str, folder: Path, catalog: Catalog
) -> None:
    erased = image(1)
    kept = image(2)
    later = image(3)  # stored after the kept one: where a compaction would not write
    catalog.add_image(erased, copy("news", 1), None)
    catalog.add_image(kept, copy("archive", 2), None)
    catalog.add_image(later, copy("news", 3), None)
    catalog.remove_provenance(catalog.provenance_of(sources=["news"]))
    catalog.scrub()
    stored = CATALOGS[adapter].stored(folder)
    for gone in (erased, later):
        for vector in gone.embeddings:
            assert vector.tobytes() not in stored
            assert vector[:8].tobytes() not in stored  # nor a part of one
        assert gone.sha256.encode() not in stored
    if not CATALOGS[adapter].sealed:  # the check can see a template that is there
        assert kept.embeddings[0].tobytes() in stored
    assert np.array_equal(catalog.embeddings(catalog.face_ids().tolist()), kept.embeddings)


# -- moving to another model (reindex --re-embed) ----------------------------------------
def test_restaged_vectors_replace_all_at_once_with_the_model_key(
    adapter: str, folder: Path, catalog: Catalog
) -> None:
    catalog.set_model_key("old@1/64/cosine")
    first, first_faces, _ = catalog.add_image(image(1), copy("news", 1), None)
    second, second_faces, _ = catalog.add_image(image(2), copy("news", 2), None)
    new = np.random.default_rng(3).standard_normal((4, 512)).astype(np.float32)
    assert catalog.images_to_restage("new@2/512/cosine") == [first, second]
    catalog.restage("new@2/512/cosine", first_faces, new[:2])
    assert catalog.images_to_restage("new@2/512/cosine") == [second]
    # Not every face has a new vector: nothing changes.
    with pytest.raises(InvalidInput, match="2 faces have no vector"):
        catalog.swap_restaged("new@2/512/cosine")
    assert catalog.model_key() == "old@1/64/cosine"
    assert np.array_equal(catalog.embeddings(first_faces), image(1).embeddings)
    # Reopened (a re-embedding stopped and started again): the staged vectors are kept.
    again = CATALOGS[adapter].open(folder)
    assert again.images_to_restage("new@2/512/cosine") == [second]
    again.restage("new@2/512/cosine", second_faces, new[2:])
    assert again.swap_restaged("new@2/512/cosine") == 4
    assert again.model_key() == "new@2/512/cosine"
    assert np.array_equal(again.embeddings(first_faces + second_faces), new)
    assert again.images_to_restage("other@3/512/cosine") == [first, second]
    again.close()


def test_vectors_staged_for_an_abandoned_model_or_an_erased_image_go(catalog: Catalog) -> None:
    first, first_faces, _ = catalog.add_image(image(1), copy("news", 1), None)
    second, second_faces, _ = catalog.add_image(image(2), copy("archive", 2), None)
    vectors = np.ones((2, 8), dtype=np.float32)
    catalog.restage("abandoned@1/8/cosine", first_faces, vectors)
    catalog.restage("chosen@1/8/cosine", second_faces, vectors)
    # Staging for another model drops what was staged for the first.
    assert catalog.images_to_restage("abandoned@1/8/cosine") == [first, second]
    catalog.remove_provenance(catalog.provenance_of(sources=["news"]))  # image 1 erased
    assert catalog.images_to_restage("chosen@1/8/cosine") == []
    assert catalog.swap_restaged("chosen@1/8/cosine") == 2


# -- concurrent writers -------------------------------------------------------------------
SHARED = range(1000, 1010)  # content every writer ingests


def write_images(adapter: str, folder: str, writer: int, count: int) -> None:
    """One writer: its own images and the shared ones, on a connection of its own."""
    catalog = CATALOGS[adapter].open(Path(folder))
    try:
        for n in range(count):
            mine = 100 * (writer + 1) + n
            catalog.add_image(image(mine), copy("news", mine), None)
            shared = SHARED[n % len(SHARED)]
            catalog.add_image(image(shared), dated(Provenance("archive", f"w{writer}/{n}")), None)
    finally:
        catalog.close()


def run_threads(target: Callable[..., None], args: list[tuple[Any, ...]]) -> None:
    """Run ``target`` in one thread per argument tuple, all at once; raise what any raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(args))

    def run(*a: Any) -> None:
        try:
            start.wait()
            target(*a)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=a) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def check_nothing_lost_or_duplicated(catalog: Catalog, writers: int, count: int) -> None:
    ids = catalog.list_image_ids(limit=10_000)
    records = catalog.get_images(ids)
    shas = [r.sha256 for r in records.values()]
    assert len(shas) == len(set(shas)) == writers * count + len(SHARED)
    stats = catalog.stats()
    assert stats["provenance"] == 2 * writers * count
    assert stats["faces"] == FACES_PER_IMAGE * len(shas)
    assert catalog.face_state()[0] == len(catalog.face_ids()) == stats["faces"]
    for n in SHARED:
        record = records[catalog.image_id_by_sha(image(n).sha256) or 0]
        assert len(record.faces) == FACES_PER_IMAGE
        assert len(record.provenance) == writers * count // len(SHARED)


def test_threads_sharing_one_connection_lose_and_duplicate_nothing(
    adapter: str, folder: Path, catalog: Catalog
) -> None:
    def shared(writer: int) -> None:
        for n in range(20):
            mine = 100 * (writer + 1) + n
            catalog.add_image(image(mine), copy("news", mine), None)
            common = SHARED[n % len(SHARED)]
            catalog.add_image(image(common), dated(Provenance("archive", f"w{writer}/{n}")), None)

    run_threads(shared, [(w,) for w in range(3)])
    check_nothing_lost_or_duplicated(catalog, 3, 20)


def test_connections_in_threads_lose_and_duplicate_nothing(
    adapter: str, folder: Path, catalog: Catalog
) -> None:
    run_threads(write_images, [(adapter, str(folder), w, 20) for w in range(3)])
    check_nothing_lost_or_duplicated(catalog, 3, 20)


def test_processes_lose_and_duplicate_nothing(adapter: str, folder: Path, catalog: Catalog) -> None:
    context = multiprocessing.get_context("spawn")  # as ingest workers start
    workers = [
        context.Process(target=write_images, args=(adapter, str(folder), w, 20)) for w in range(2)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
    assert [p.exitcode for p in workers] == [0, 0]
    check_nothing_lost_or_duplicated(catalog, 2, 20)


def test_a_copy_added_while_its_image_is_erased_is_never_lost(
    adapter: str, folder: Path, catalog: Catalog
) -> None:
    """One writer erases an image's only copy while another adds a new copy of the same
    content: afterwards the new copy is there, with its image and faces, exactly once."""
    other = CATALOGS[adapter].open(folder)
    content = image(7)
    try:
        for n in range(30):
            catalog.add_image(content, copy("news", n), None)
            added: list[bool] = []

            def erase() -> None:
                catalog.remove_provenance(catalog.provenance_of(sources=["news"]))

            def add(n: int = n, added: list[bool] = added) -> None:
                copy_of = dated(Provenance("archive", f"again/{n}.jpg"))
                added.append(other.add_image(content, copy_of, None) is not None)

            run_threads(lambda job: job(), [(erase,), (add,)])
            image_id = catalog.image_id_by_sha(content.sha256)
            assert added == [True] and image_id is not None, f"round {n}: the copy was lost"
            record = catalog.get_images([image_id])[image_id]
            assert [(p.source, p.path) for p in record.provenance] == [
                ("archive", f"again/{n}.jpg")
            ], f"round {n}"
            assert len(record.faces) == FACES_PER_IMAGE
            assert catalog.face_state()[0] == FACES_PER_IMAGE
            catalog.remove_provenance(catalog.provenance_of(sources=["archive"]))
    finally:
        other.close()


# -- persons ------------------------------------------------------------------------------
def test_a_grouping_run_creates_persons_and_keeps_confirmed_faces(catalog: Catalog) -> None:
    _, faces_a, _ = catalog.add_image(image(1), copy("news", 1), None)
    _, faces_b, _ = catalog.add_image(image(2), copy("news", 2), None)
    made = catalog.write_grouping({faces_a[0]: -1, faces_b[0]: -1, faces_a[1]: -2})
    assert sorted(made) == [-2, -1]
    first = catalog.persons([made[-1]])[0]
    assert first.faces == (faces_a[0], faces_b[0]) and len(first.images) == 2
    assert first.confirmed == () and first.name == ""
    moved = catalog.place_faces([faces_b[0]], made[-2])  # a person's decision
    assert moved == made[-2]
    # A later run may not take a confirmed face back, and may ungroup unconfirmed ones.
    catalog.write_grouping({faces_b[0]: made[-1]}, ungroup=[faces_a[0]])
    current, confirmed = catalog.person_assignments()
    assert current == {faces_a[1]: made[-2], faces_b[0]: made[-2]}
    assert confirmed == {faces_b[0]: made[-2]}
    assert [p.id for p in catalog.persons()] == [made[-2]]  # person -1 had no face left


def test_persons_are_named_and_go_with_their_last_face(catalog: Catalog) -> None:
    _, faces, _ = catalog.add_image(image(3), copy("news", 3), None)
    person = catalog.place_faces(faces[:1], None)
    catalog.rename_person(person, "Suspect A")
    assert catalog.persons([person])[0].name == "Suspect A"
    with pytest.raises(NotFound):
        catalog.rename_person(person + 1000, "nobody")
    with pytest.raises(NotFound):
        catalog.place_faces(faces, person + 1000)
    catalog.remove_provenance(catalog.provenance_of(sources=["news"]))
    assert catalog.persons() == [] and catalog.person_assignments() == ({}, {})
