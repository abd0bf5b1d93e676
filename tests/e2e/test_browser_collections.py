"""Collections in Debian's Chromium: upload a zipped folder on the ingest page, watch the
server-fed progress bar finish, see the failed files with their reasons, browse the source;
a zip that reaches outside its folder is refused on the page with nothing stored."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facesearch import FaceSearch, Settings
from facesearch.accounts.sqlite import SqliteAccountStore
from tests.app_gallery import NO_FACE, register
from tests.e2e.conftest import serving

pytestmark = pytest.mark.browser

PHOTOS = ("face_recognition/examples/obama.jpg", "face_recognition/examples/biden.jpg")


def screenshot(page: Any, name: str) -> None:
    """Written under /tmp/screenshots-people/ when FACESEARCH_SCREENSHOTS is set."""
    if os.environ.get("FACESEARCH_SCREENSHOTS"):
        folder = Path("/tmp/screenshots-people")
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    home = tmp_path_factory.mktemp("collections") / "home"
    store = SqliteAccountStore(home / "accounts.sqlite")
    keys = {role: store.create_key(role, role)[1] for role in ("ingest", "search")}
    store.close()
    settings = Settings(home=home, workers=1, governance={"retention_interval_minutes": 0})
    with FaceSearch(settings) as engine:
        register(engine, "evidence")
        with serving(engine) as url:
            yield url, keys, home


def stored(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "uploads").rglob("*") if p.is_file())


def sign_in(page: Any, url: str, key: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/**")


def folder_zip(dev: Path, tmp_path: Path) -> Path:
    path = tmp_path / "evidence-folder.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for rel in PHOTOS:
            zf.write(dev / rel, f"folder/{Path(rel).name}")
        zf.write(dev / NO_FACE, "folder/coffee.png")
        zf.writestr("folder/broken.jpg", (dev / PHOTOS[0]).read_bytes()[:200])
        zf.writestr("folder/readme.txt", "case notes")
    return path


def test_a_zipped_folder_is_ingested_with_progress_and_browsed(
    page: Any, site: tuple[str, dict[str, str], Path], dev: Path, tmp_path: Path
) -> None:
    url, keys, _ = site
    sign_in(page, url, keys["ingest"])
    page.get_by_role("link", name="Ingest").click()
    page.get_by_label("Source").select_option("evidence")
    page.set_input_files("#ingest-files", str(folder_zip(dev, tmp_path)))
    page.get_by_role("button", name="Upload and ingest").click()
    status = page.locator("#ingest-status")
    page.wait_for_function(
        "() => document.getElementById('ingest-status').textContent.startsWith('Done.')",
        timeout=120_000,
    )
    assert page.locator("#ingest-progress").evaluate("p => [p.value, p.max]") == [5, 5]
    assert "3 image(s) added, 2 face(s) indexed" in status.inner_text()
    failed = page.locator("#ingest-failed tbody").inner_text()
    assert "evidence-folder.zip/folder/readme.txt" in failed and "not an image file" in failed
    assert "evidence-folder.zip/folder/broken.jpg" in failed
    screenshot(page, "ingest-progress-done")

    # The ingest role sees the source's failed files but not its images.
    page.get_by_role("link", name="Open the collection").click()
    assert page.locator("#collection-failures tbody tr").count() == 2
    assert page.locator("#collection-images").count() == 0


def test_the_collection_shows_its_images_to_a_searcher(
    page: Any, site: tuple[str, dict[str, str], Path]
) -> None:
    url, keys, _ = site
    sign_in(page, url, keys["search"])
    page.goto(f"{url}/sources")
    page.get_by_role("link", name="evidence").click()
    images = page.locator("#collection-images li")
    images.first.wait_for()
    assert images.count() == 3
    names = images.locator("p").all_inner_texts()
    assert {"obama.jpg", "biden.jpg", "coffee.png"} <= set(names)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#collection-images img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert "readme.txt" in page.locator("#collection-failures").inner_text()
    screenshot(page, "collection-browser")


def test_a_zip_reaching_outside_its_folder_is_refused_on_the_page(
    page: Any, site: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    url, keys, home = site
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../accounts.sqlite", b"overwrite")
    before = stored(home)
    sign_in(page, url, keys["ingest"])
    page.goto(f"{url}/ingest")
    page.set_input_files("#ingest-files", str(evil))
    page.get_by_role("button", name="Upload and ingest").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "path traversal" in alert.inner_text()
    assert stored(home) == before
    screenshot(page, "ingest-refused-zip")


def test_a_video_is_uploaded_and_a_result_opens_it_at_the_moment(
    page: Any, site: tuple[str, dict[str, str], Path], dev: Path, tmp_path: Path
) -> None:
    from tests.integration.test_video import make_clip, still

    url, keys, _ = site
    clip = make_clip(
        tmp_path / "lobby.mp4",
        [(still(dev / PHOTOS[1]), 2.0), (still(dev / PHOTOS[0]), 2.0)],
    )
    sign_in(page, url, keys["ingest"])
    page.goto(f"{url}/ingest")
    page.set_input_files("#ingest-files", str(clip))
    page.get_by_role("button", name="Upload and ingest").click()
    page.wait_for_function(
        "() => document.getElementById('ingest-status').textContent.startsWith('Done.')",
        timeout=120_000,
    )
    assert "2 face(s) indexed" in page.locator("#ingest-status").inner_text()

    sign_in(page, url, keys["search"])
    page.goto(f"{url}/")
    page.get_by_label("Purpose").fill("video check")
    page.get_by_label("Case reference").fill("E2E-VIDEO-1")
    page.set_input_files("#probe-file", str(dev / "face_recognition/examples/obama2.jpg"))
    moment = page.locator("#results li.result a.moment").first
    moment.wait_for()
    href = moment.get_attribute("href")
    assert href is not None and "/video#t=" in href and 2.0 <= float(href.split("#t=")[1]) < 4.0
    screenshot(page, "video-result-moment")
