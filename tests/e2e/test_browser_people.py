"""People in Debian's Chromium: the person browser, a person's page with every image and
its sources, naming and splitting, search with this person, and the erasure review
started from a person."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facesearch import FaceSearch, Settings
from facesearch.accounts.sqlite import SqliteAccountStore
from tests.app_gallery import register
from tests.e2e.conftest import serving
from tests.e2e.test_browser_collections import screenshot, sign_in

pytestmark = pytest.mark.browser

PEOPLE = ("Marc_Grossman", "Mary_Carey")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, dev: Path) -> Iterator[tuple[str, str]]:
    home = tmp_path_factory.mktemp("people-web") / "home"
    store = SqliteAccountStore(home / "accounts.sqlite")
    admin = store.create_key("admin", "admin")[1]
    store.close()
    settings = Settings(home=home, workers=1, governance={"retention_interval_minutes": 0})
    with FaceSearch(settings) as engine:
        register(engine, "album")
        register(engine, "press")
        engine.update_source("album", group_people=True)
        engine.ingest(
            [dev / f"lfw/{p}/{p}_000{n}.jpg" for p in PEOPLE for n in (1, 2, 3)], source="album"
        )
        engine.ingest([dev / f"lfw/{p}/{p}_0004.jpg" for p in PEOPLE], source="press")
        with serving(engine) as url:
            yield url, admin


def test_a_person_is_named_searched_with_and_reviewed_for_erasure(
    page: Any, site: tuple[str, str]
) -> None:
    url, admin = site
    sign_in(page, url, admin)
    page.get_by_role("link", name="People").click()
    cards = page.locator("#persons li")
    cards.first.wait_for()
    assert cards.count() == 2
    assert "album" in page.locator("main").inner_text()  # which sources declare it
    screenshot(page, "people-browser")

    cards.first.get_by_role("link").last.click()
    assert page.locator("#person-images tbody tr").count() == 3
    assert "album" in page.locator("#person-images").inner_text()
    page.get_by_label("Name").fill("Witness B")
    page.get_by_role("button", name="Save the name").click()
    page.wait_for_load_state()
    assert page.locator("#person-title").inner_text() == "Witness B"

    page.get_by_label("Purpose").fill("browser check")
    page.get_by_label("Case reference").fill("E2E-PEOPLE-1")
    page.get_by_role("button", name="Search with this person").click()
    results = page.locator("#person-results li")
    results.first.wait_for()
    likely = page.locator("#person-results li.match")
    assert likely.count() == 4  # three album photos and the press photo of the same person
    assert "press" in page.locator("#person-results").inner_text()
    screenshot(page, "person-search")

    page.get_by_role("link", name="Review for erasure").click()
    assert page.locator("#review-summary").inner_text().startswith("4 image(s)")
    screenshot(page, "person-erasure-review")


def test_splitting_a_face_off_makes_a_new_person(page: Any, site: tuple[str, str]) -> None:
    url, admin = site
    sign_in(page, url, admin)
    page.goto(f"{url}/people")
    page.locator("#persons li").last.get_by_role("link").last.click()
    page.locator("#person-faces input[type=checkbox]").first.check()
    page.get_by_role("button", name="Split the selected faces into a new person").click()
    page.wait_for_load_state()
    assert "1 face(s) in 1 image(s), 1 confirmed" in page.locator("main").inner_text()
    page.goto(f"{url}/people")
    assert page.locator("#persons li").count() == 3
