"""Copies of one photo (resized, letterboxed, re-encoded) fold into one result listing every
copy and where each was found; different photos of the same person stay apart."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facesearch import FaceSearch, Settings
from facesearch.ingest.items import IngestItem

from ..conftest import register

EXAMPLES = "face_recognition/examples"
ORIGINAL = f"{EXAMPLES}/obama.jpg"
LETTERBOXED = [f"{EXAMPLES}/obama-{size}.jpg" for size in ("240p", "720p", "1080p")]
OTHER_PHOTOS = [f"{EXAMPLES}/obama2.jpg", "face_recognition/tests/test_images/32bit.png"]
PROBE = "face_recognition/tests/test_images/obama3.jpg"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, dev: Path) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("copies") / "home"
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        register(fs, "press", "blog")
        fs.ingest(
            [
                IngestItem(path=dev / rel, page_url=f"https://press.example.org/{n}")
                for n, rel in enumerate([ORIGINAL, *LETTERBOXED[:2], OTHER_PHOTOS[0]])
            ],
            source="press",
        )
        fs.ingest(
            [
                IngestItem(path=dev / rel, page_url=f"https://blog.example.net/{n}")
                for n, rel in enumerate([LETTERBOXED[2], OTHER_PHOTOS[1], f"{EXAMPLES}/biden.jpg"])
            ],
            source="blog",
        )
        yield fs


def test_copies_are_one_result_listing_every_copy_and_page(engine: Any, dev: Path) -> None:
    [result] = engine.search(dev / PROBE, top_k=10)
    rows = {Path(m.image.path).name: m for m in result.matches}
    shown = [c.image.id for m in result.matches for c in m.copies or [m]]
    assert len(shown) == len(set(shown)), "a copy is shown twice"
    assert len(shown) == 7  # every stored image, once
    group = next(m for m in result.matches if len(m.copies) == 4)
    names = [Path(c.image.path).name for c in group.copies]
    assert set(names) == {"obama.jpg", "obama-240p.jpg", "obama-720p.jpg", "obama-1080p.jpg"}
    sizes = [c.image.width * c.image.height for c in group.copies]
    assert sizes == sorted(sizes, reverse=True)  # the best (largest) copy first
    pages = {p.page_url for c in group.copies for p in c.image.provenance}
    assert {"https://press.example.org/0", "https://blog.example.net/0"} <= pages
    # obama2.jpg and its 32-bit PNG are one photo, another than obama.jpg: their own row.
    other = next(
        m for m in result.matches if "obama2.jpg" in [Path(c.image.path).name for c in m.copies]
    )
    assert other is not group and len(other.copies) == 2
    assert "biden.jpg" in rows and not rows["biden.jpg"].copies


def test_erasure_review_still_sees_every_image(engine: Any, dev: Path) -> None:
    review = engine.search_vector(
        engine.probe(dev / PROBE).embeddings[0],
        probe_face=engine.probe(dev / PROBE).faces[0],
        top_k=10,
        audit=None,
    )
    assert len(review.matches) == 7 and all(not m.copies for m in review.matches)


def test_the_hash_is_kept_in_the_catalog(engine: Any) -> None:
    db = sqlite3.connect(engine.home / "catalog.sqlite")
    hashes = [h for (h,) in db.execute("SELECT phash FROM images")]
    db.close()
    assert len(hashes) == 7 and all(h and len(h) == 16 for h in hashes)


def test_a_catalog_made_before_hashes_gains_the_column(tmp_path: Path) -> None:
    from facesearch.catalog.sqlite import SqliteCatalog

    path = tmp_path / "catalog.sqlite"
    SqliteCatalog(path).close()
    db = sqlite3.connect(path)
    # As catalogs were made before (schema version 2): none of the columns added since.
    db.execute("ALTER TABLE images DROP COLUMN phash")
    db.execute("ALTER TABLE sources DROP COLUMN group_people")
    db.execute("ALTER TABLE provenance DROP COLUMN video")
    db.execute("ALTER TABLE provenance DROP COLUMN video_time")
    db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    catalog = SqliteCatalog(path)
    columns = [r[1] for r in catalog.db.execute("PRAGMA table_info(images)")]
    catalog.close()
    assert "phash" in columns
