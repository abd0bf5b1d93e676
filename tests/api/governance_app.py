"""A copy of the test gallery per test, for the data-protection endpoints that remove data."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from facesearch import FaceSearch, Settings
from facesearch.app import create_app
from tests.app_gallery import PURPOSE, Gallery, bearer


@contextmanager
def gallery_copy(
    gallery: Gallery, where: Path, **governance: Any
) -> Iterator[tuple[TestClient, FaceSearch]]:
    """The app over a private copy of the gallery home (same keys), scheduler off."""
    home = where / "home"
    shutil.copytree(gallery.home, home)
    settings = Settings(
        home=home,
        workers=1,
        api={"search_rate_per_minute": 6000, "search_burst": 1000},
        governance={"retention_interval_minutes": 0, **governance},
    )
    with (
        FaceSearch(settings) as engine,
        TestClient(create_app(engine), base_url="https://testserver") as client,
    ):
        yield client, engine


def found_files(client: TestClient, gallery: Gallery, photo: Path) -> list[str]:
    """File names a search for ``photo`` returns as likely matches."""
    response = client.post(
        "/v1/search",
        files={"image": (photo.name, photo.read_bytes(), "image/jpeg")},
        data={**PURPOSE, "top_k": "50"},
        headers=bearer(gallery.keys["search"]),
    )
    assert response.status_code == 200, response.text
    return [m["file_name"] for m in response.json()["matches"] if m["is_match"]]
