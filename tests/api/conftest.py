from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facesearch import FaceSearch
from facesearch.app import create_app
from tests.app_gallery import Gallery, build_gallery


@pytest.fixture(scope="session")
def gallery(
    tmp_path_factory: pytest.TempPathFactory, dev: Path, manifest: list[dict[str, str]]
) -> Gallery:
    return build_gallery(tmp_path_factory.getbasetemp(), dev, manifest)


@pytest.fixture(scope="module")
def client(gallery: Gallery) -> Iterator[TestClient]:
    with (
        FaceSearch(gallery.settings(search_rate_per_minute=6000, search_burst=1000)) as engine,
        TestClient(create_app(engine), base_url="https://testserver") as client,
    ):
        yield client
