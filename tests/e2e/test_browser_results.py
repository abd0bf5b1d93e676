"""Results in the browser: the verdict first, bands on tiles, searching again from a result
with one click, adding a photo of the same person, a photo without a face."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from facesearch import FaceSearch
from facesearch.ingest.items import IngestItem
from tests.app_gallery import NO_FACE, OBAMA_PROBE, TEST_OUTPUT, Gallery, build_gallery
from tests.e2e.test_browser_search import LOADED, first_result_file, sign_in

pytestmark = pytest.mark.browser

OTHER_OBAMA = "face_recognition/tests/test_images/obama3.jpg"
# Letterboxed video frames of the newsroom's obama.jpg, found on another site.
COPIES = [f"face_recognition/examples/obama-{size}.jpg" for size in ("720p", "1080p")]


@pytest.fixture(scope="module")
def e2e_gallery(
    tmp_path_factory: pytest.TempPathFactory, dev: Path, manifest: list[dict[str, str]]
) -> Gallery:
    """The shared gallery plus two copies of one of its photos (its own home: the other
    browser and API tests count the shared gallery's images)."""
    gallery = build_gallery(tmp_path_factory.mktemp("results-gallery"), dev, manifest)
    with FaceSearch(gallery.settings()) as fs:
        fs.ingest(
            [
                IngestItem(path=dev / rel, page_url=f"https://video.example.net/clip/{n}")
                for n, rel in enumerate(COPIES)
            ],
            source="newsroom",
        )
    return gallery


def shot(page: Any, name: str) -> None:
    """Screenshots for the closing note: FACESEARCH_SCREENSHOTS names a folder for them."""
    folder = Path(os.environ.get("FACESEARCH_SCREENSHOTS") or TEST_OUTPUT / "e2e")
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)


def test_verdict_bands_search_again_and_add_a_photo(
    page: Any, server: str, e2e_gallery: Gallery
) -> None:
    sign_in(page, server)
    page.get_by_label("Purpose").fill("missing person")
    page.get_by_label("Case reference").fill("MP-12")
    page.set_input_files("#probe-file", str(e2e_gallery.dev / OBAMA_PROBE))
    # The row of obama.jpg and its copies is headed by the copy that scored best.
    assert first_result_file(page) in {"obama.jpg", "obama-720p.jpg", "obama-1080p.jpg"}
    verdict = page.locator("#verdict")
    assert verdict.inner_text().startswith("Best result: strong")
    best = page.locator("#results li.result").first
    assert "band-strong" in (best.get_attribute("class") or "")
    assert "faces searched" in page.locator("#summary").inner_text()
    # The tile is the whole image with the matched face boxed on it.
    best.locator("img").evaluate(LOADED)
    box = best.locator(".tile-figure .box").bounding_box()
    image = best.locator(".tile-figure img").bounding_box()
    assert box and image and 0 < box["width"] < image["width"]
    # 20 images in the gallery, a page of 24: nothing more to show.
    assert page.locator("#more").is_hidden()
    shot(page, "results.png")

    # obama.jpg and its two letterboxed copies are one result, every page listed.
    assert "3 copies of this photo, 3 source page(s)" in best.inner_text()
    files = page.locator("#results li.result .source").all_inner_texts()
    assert sum(("obama.jpg" in f or "obama-720p" in f or "obama-1080p" in f) for f in files) == 1
    best.locator("button.result-open").click()
    dialog = page.locator("#detail")
    dialog.wait_for(state="visible")
    heads = dialog.locator("#detail-prov li.copy-head").all_inner_texts()
    assert len(heads) == 3 and "1920x1080" in heads[0]  # the largest copy first
    assert "video.example.net" in dialog.locator("#detail-prov").inner_html()
    page.locator("#detail-img").evaluate(LOADED)
    shot(page, "grouped-result.png")
    page.locator("#detail-close").click()

    # One click: the matched face becomes the probe.
    face_id = best.get_attribute("data-face-id")
    best.get_by_role("button", name="Search with this face").click()
    page.wait_for_selector(f"#status:has-text('again with face {face_id}')")
    page.wait_for_selector("#results li.result")
    shown = page.locator("#results li.result").evaluate_all("els => els.map(e => e.dataset.faceId)")
    assert face_id not in shown  # the probe face is not its own result
    assert page.locator("#probe-list").inner_text().strip() == f"Probe 1: stored face {face_id}"
    shot(page, "search-again.png")

    # Add a second photo of the same person: each result says which probes it matched.
    page.set_input_files("#more-file", str(e2e_gallery.dev / OTHER_OBAMA))
    page.wait_for_selector("#status:has-text('2 probes of one person')")
    page.wait_for_selector("#results li.result .probes-matched")
    assert "Matched probe(s): 1, 2 of 2" in page.locator("#results li.result").first.inner_text()
    listed = page.locator("#probe-list").inner_text()
    assert "Probe 1: obama3.jpg" in listed and f"Probe 2: stored face {face_id}" in listed
    shot(page, "two-probes.png")


def test_a_photo_without_a_face_asks_for_another(
    page: Any, server: str, e2e_gallery: Gallery
) -> None:
    sign_in(page, server)
    page.get_by_label("Purpose").fill("missing person")
    page.get_by_label("Case reference").fill("MP-12")
    page.set_input_files("#probe-file", str(e2e_gallery.dev / NO_FACE))
    page.wait_for_selector("#status.error")
    assert "no face" in page.locator("#status").inner_text().lower()
    assert page.locator("#probe-help").is_hidden()
    assert page.locator("#probe button.box").count() == 0


def test_the_case_page_shows_the_searches_of_the_case(
    page: Any, server: str, e2e_gallery: Gallery
) -> None:
    # The searches of case MP-12 were made by the first test of this module.
    page.goto(f"{server}/login")
    page.get_by_label("API key").fill(e2e_gallery.keys["auditor"])
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{server}/audit?action=search&case_ref=MP-12")
    rows = page.locator("#entries tbody tr")
    assert rows.count() >= 3
    assert "results" in rows.first.inner_text() and "faces" in rows.first.inner_text()
    shot(page, "audit.png")
    page.locator("#case-link").click()
    page.wait_for_url(f"{server}/cases/MP-12")
    assert "Audit log verified: hash chain intact" in page.locator("#verification").inner_text()
    searches = page.locator("section.case-search")
    assert searches.count() >= 3
    assert "missing person" in searches.first.inner_text()
    assert "strong" in page.locator("table.case-results").first.inner_text()
    assert page.get_by_role("link", name="PDF").get_attribute("href") == "/cases/MP-12/file.pdf"
    shot(page, "case.png")
