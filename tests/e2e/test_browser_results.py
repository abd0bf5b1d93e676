"""Results in the browser: the verdict first, bands on tiles, searching again from a result
with one click, adding a photo of the same person, a photo without a face."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.app_gallery import NO_FACE, OBAMA_PROBE, TEST_OUTPUT, Gallery
from tests.e2e.test_browser_search import LOADED, first_result_file, sign_in

pytestmark = pytest.mark.browser

OTHER_OBAMA = "face_recognition/tests/test_images/obama3.jpg"


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
    assert first_result_file(page) == "obama.jpg"
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
    # 18 images in the gallery, a page of 24: nothing more to show.
    assert page.locator("#more").is_hidden()
    shot(page, "results.png")

    # One click: the matched face becomes the probe.
    face_id = best.get_attribute("data-face-id")
    best.get_by_role("button", name="Search with this face").click()
    page.wait_for_selector(f"#status:has-text('again with face {face_id}')")
    page.wait_for_selector("#results li.result")
    shown = page.locator("#results li.result").evaluate_all("els => els.map(e => e.dataset.faceId)")
    assert face_id not in shown  # the probe face is not its own result
    assert page.locator("#probe-list").inner_text().strip() == f"Stored face {face_id}"
    shot(page, "search-again.png")

    # Add a second photo of the same person: each result says which probes it matched.
    page.set_input_files("#more-file", str(e2e_gallery.dev / OTHER_OBAMA))
    page.wait_for_selector("#status:has-text('2 probes of one person')")
    page.wait_for_selector("#results li.result .probes-matched")
    assert "Matched probe(s): 1, 2 of 2" in page.locator("#results li.result").first.inner_text()
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
