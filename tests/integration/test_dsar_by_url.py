"""`facesearch dsar --url / --url-prefix`: an access request without a photo, by where the
photos were published, on a home ingested from a manifest with page URLs. Nothing about
the request is kept but its audit entry."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facesearch import FaceSearch, InvalidInput, Settings
from facesearch.catalog.ports import NewImage
from facesearch.domain import Provenance
from facesearch.engine import MAX_URL_REPORT_IMAGES
from facesearch.governance.retention import stamp

from ..conftest import REGISTER_ARGS, register

ALICE = "https://example.com/u/alice"
# file -> (page_url, source_url), as a crawler recorded them.
PUBLISHED = {
    "face_recognition/examples/obama.jpg": (
        "https://example.com/u/alice/posts/1",
        "https://cdn.example.net/a1.jpg",
    ),
    "face_recognition/examples/biden.jpg": ("https://EXAMPLE.com/u/alice/", ""),
    "face_recognition/examples/knn_examples/train/alex_lacamoire/img1.jpg": (
        "https://example.com/u/alicia",
        "https://cdn.example.net/c3.jpg",
    ),
    "skimage/coffee.png": ("https://other.org/news?id=7", ""),
}


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facesearch.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory, dev: Path) -> Path:
    """A home ingested from a manifest of the places each photo was published."""
    base = tmp_path_factory.mktemp("dsar-url")
    manifest = base / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "page_url", "source_url"])
        for rel, (page, source) in PUBLISHED.items():
            writer.writerow([str(dev / rel), page, source])
    home = base / "home"
    assert cli(home, "sources", "add", "crawl", *REGISTER_ARGS).returncode == 0
    done = cli(home, "ingest", str(manifest), "--source", "crawl", "--workers", "1")
    assert done.returncode == 0, done.stderr
    return home


@pytest.fixture(scope="module")
def ids(crawl: Path) -> dict[str, int]:
    """Image id of each file, by its name."""
    out = {}
    for image_id in range(1, len(PUBLISHED) + 1):
        shown = json.loads(cli(crawl, "show", str(image_id), "--json").stdout)
        out[Path(shown["path"]).name] = image_id
    return out


def dsar(home: Path, *args: str) -> dict[str, object]:
    done = cli(home, "dsar", *args, "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def found(report: dict[str, object], ids: dict[str, int]) -> set[str]:
    names = {v: k for k, v in ids.items()}
    images = report["images"]
    assert isinstance(images, list)
    return {names[i["image_id"]] for i in images}


def test_a_page_finds_exactly_its_images_however_the_address_was_written(
    crawl: Path, ids: dict[str, int]
) -> None:
    # Stored as https://EXAMPLE.com/u/alice/: host case and trailing slash do not matter.
    report = dsar(crawl, "--url", ALICE)
    assert found(report, ids) == {"biden.jpg"}
    assert report["matched_by"] == "url-exact" and report["url"] == ALICE
    [image] = report["images"]  # type: ignore[misc]
    assert image["similarity"] is None and image["faces_stored"] == 1
    [copy] = image["copies"]
    assert copy["source"] == "crawl" and copy["lawful_basis"].startswith("Art. 6(1)(f)")
    assert copy["page_url"] == "https://EXAMPLE.com/u/alice/" and copy["kept_until"]
    # The file's own address is a place of publication too.
    assert found(dsar(crawl, "--url", "http://cdn.example.net/a1.jpg"), ids) == {"obama.jpg"}
    assert found(dsar(crawl, "--url", "https://other.org/news?id=7"), ids) == {"coffee.png"}
    assert found(dsar(crawl, "--url", "https://other.org/news?id=8"), ids) == set()


def test_a_prefix_covers_a_profile_or_a_site_at_path_boundaries(
    crawl: Path, ids: dict[str, int], tmp_path: Path
) -> None:
    profile = dsar(crawl, "--url-prefix", ALICE, "--html", str(tmp_path / "r.html"))
    assert found(profile, ids) == {"obama.jpg", "biden.jpg"}  # not /u/alicia
    assert profile["matched_by"] == "url-prefix" and profile["threshold"] is None
    page = (tmp_path / "r.html").read_text()
    assert f"2 image(s) published under {ALICE}" in page and "/u/alice/posts/1" in page
    # A string prefix that is not a path-segment prefix finds nothing.
    assert dsar(crawl, "--url-prefix", "https://example.com/u/al")["images_found"] == 0
    site = dsar(crawl, "--url-prefix", "https://Example.com")
    assert found(site, ids) == {"obama.jpg", "biden.jpg", "img1.jpg"}
    text = cli(crawl, "dsar", "--url-prefix", ALICE)
    assert text.returncode == 0
    assert f"2 image(s) published under {ALICE}" in text.stdout.splitlines()[0]
    assert "/u/alice/posts/1" in text.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--url", "ftp://example.com/u/alice"),
        ("--url", "javascript:alert(1)"),
        ("--url-prefix", "example.com/u/alice"),
        ("--url-prefix", "https://example.com/?u=alice"),
        (),
        ("--url", ALICE, "--url-prefix", ALICE),
        ("photo.jpg", "--url", ALICE),
        ("--url", ALICE, "--face", "1"),
    ],
)
def test_a_bad_request_gets_one_line_and_a_non_zero_exit(crawl: Path, args: tuple[str]) -> None:
    done = cli(crawl, "dsar", *args)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facesearch: error: "), done.stderr
    assert done.stdout == ""


def test_only_an_audit_entry_is_kept_with_a_keyed_hash_of_the_address(crawl: Path) -> None:
    def snapshot() -> set[str]:
        return {str(p.relative_to(crawl)) for p in crawl.rglob("*")}

    asked = "https://example.com/u/zed-who-asked"
    before = snapshot()
    first = dsar(crawl, "--url-prefix", asked + "/")
    second = dsar(crawl, "--url", asked)
    assert first["images_found"] == second["images_found"] == 0
    assert snapshot() == before, "the request left a file in the home"
    for path in crawl.rglob("*"):
        if path.is_file():
            assert b"zed-who-asked" not in path.read_bytes(), f"{path} holds the address"
    exported = cli(crawl, "audit", "export").stdout.splitlines()
    requests = [json.loads(e) for e in exported if '"access_request"' in e]
    last, previous = requests[-1], requests[-2]
    assert set(last["details"]) == {"request_id", "match", "url_hash", "results"}
    assert (previous["details"]["match"], last["details"]["match"]) == ("url-prefix", "url-exact")
    assert previous["details"]["request_id"] == first["request_id"]
    assert last["details"]["results"] == 0 and len(last["details"]["url_hash"]) == 64
    # The same address links the two requests; the hash is not a plain SHA-256 of it.
    assert previous["details"]["url_hash"] == last["details"]["url_hash"]
    for form in (asked, "example.com/u/zed-who-asked"):
        assert last["details"]["url_hash"] != hashlib.sha256(form.encode()).hexdigest()
    assert cli(crawl, "audit", "verify").returncode == 0


def test_a_prefix_covering_more_images_than_one_report_holds_is_refused(
    tmp_path: Path,
) -> None:
    """A site with more images than one report holds: refused, with the way out."""
    with FaceSearch(Settings(home=tmp_path / "home", workers=1)) as engine:
        refuse_a_large_report(engine)


def refuse_a_large_report(engine: FaceSearch) -> None:
    register(engine, "site")
    keep = engine.source("site").retention_days
    for i in range(MAX_URL_REPORT_IMAGES + 1):
        image = NewImage(
            sha256=f"{i:064x}",
            width=1,
            height=1,
            format="JPEG",
            bytes=1,
            faces=(),
            embeddings=np.zeros((0, 128), np.float32),
        )
        where = Provenance("site", f"/site/{i}.jpg", page_url=f"https://big.example/p/{i}")
        engine.catalog.add_image(image, stamp(where, keep), None)
    with pytest.raises(InvalidInput, match="give a narrower prefix"):
        engine.access_request_by_url("https://big.example", prefix=True)
    assert engine.access_request_by_url("https://big.example/p/7")["images_found"] == 1
    assert [e.details["match"] for e in engine.audit.entries(action="access_request")] == [
        "url-exact"
    ]
