"""The web UI in Debian's Chromium: sign in, upload a probe, pick a face, open a match."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.app_gallery import TEST_OUTPUT, TWO_PEOPLE, Gallery, page_url

OUTPUT = TEST_OUTPUT / "e2e"

pytestmark = pytest.mark.browser

LOADED = "i => (i.complete && i.naturalWidth) || new Promise(r => i.addEventListener('load', r))"
EXPECTED = {"face_recognition:obama": "obama.jpg", "face_recognition:biden": "biden.jpg"}


def sign_in(page: Any, server: str) -> None:
    page.goto(f"{server}/login")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server}/")


def first_result_file(page: Any) -> str:
    page.wait_for_selector("#results li.result")
    text = page.locator("#results li.result .source").first.inner_text()
    return text.split(" · ")[-1]


def test_search_pick_a_face_and_open_the_source(
    page: Any, server: str, e2e_gallery: Gallery
) -> None:
    sign_in(page, server)
    assert "investigative lead, not an identification" in page.locator(".banner").first.inner_text()

    # Without a purpose and a case reference nothing is searched.
    page.set_input_files("#probe-file", str(e2e_gallery.dev / TWO_PEOPLE))
    page.wait_for_selector("#status:has-text('purpose and the case reference')")
    assert page.locator("#results li.result").count() == 0
    page.get_by_label("Purpose").fill("missing person")
    page.get_by_label("Case reference").fill("MP-77")
    page.get_by_label("Case reference").press("Tab")  # the change searches
    boxes = page.locator("#probe button.box")
    boxes.first.wait_for()
    assert boxes.count() >= 2
    # The largest face is preselected and searched first.
    assert boxes.nth(0).get_attribute("aria-pressed") == "true"
    page.wait_for_selector("#status:has-text('searching face 1')")
    first_face_top = first_result_file(page)
    assert first_face_top in EXPECTED.values()

    # Pick the second face with the keyboard: the boxes are buttons.
    boxes.nth(1).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#status:has-text('searching face 2')")
    page.wait_for_selector("#probe button.box[data-face='1'][aria-pressed='true']")
    second_face_top = first_result_file(page)
    assert {first_face_top, second_face_top} == set(EXPECTED.values())

    best = page.locator("#results li.result").first
    # The band in words, the people expected this high, the capture date, the site.
    assert re.search(r"Strong|Possible|Weak lead", best.inner_text())
    assert "other people expected this high" in best.inner_text()
    assert "Captured 20" in best.inner_text()
    link = best.get_by_role("link", name="archive.example.org")
    assert link.get_attribute("href") == page_url(second_face_top)
    page.locator("#results img").first.evaluate(LOADED)
    page.screenshot(path=str(OUTPUT / "results.png"), full_page=True)

    # Below-threshold results are hidden until asked for.
    shown = page.locator("#results li.result").count()
    assert page.locator("#results li.result.below").count() == 0
    page.get_by_label("Show results below the threshold").check()
    assert page.locator("#results li.result").count() > shown

    best.locator("button.result-open").click()
    dialog = page.locator("#detail")
    dialog.wait_for(state="visible")
    assert second_face_top in dialog.locator("#detail-prov").inner_text()
    assert "newsroom" in dialog.inner_text()
    page.locator("#detail-img").evaluate(LOADED)
    page.screenshot(path=str(OUTPUT / "result-detail.png"))

    with page.expect_navigation():
        dialog.get_by_role("link", name="Open the image's details page").click()
    assert re.search(r"/images/\d+\?face=\d+$", page.url)
    table = page.locator("table").inner_text()
    assert "newsroom" in table and second_face_top in table
    assert page.locator(".figure .box.selected").count() == 1
    source_link = page.get_by_role("link", name="page")
    assert source_link.get_attribute("href") == page_url(second_face_top)


def test_the_search_page_fits_a_phone(page: Any, server: str, e2e_gallery: Gallery) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, server)
    page.get_by_label("Purpose").fill("missing person")
    page.get_by_label("Case reference").fill("MP-77")
    page.set_input_files(
        "#probe-file", str(e2e_gallery.dev / "face_recognition/examples/obama2.jpg")
    )
    assert first_result_file(page) == "obama.jpg"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page scrolls sideways on a phone"
    page.screenshot(path=str(OUTPUT / "results-phone.png"), full_page=True)
