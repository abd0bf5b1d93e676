"""A gallery of a few hundred real dev photos, ingested once per test session."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from facesearch import FaceSearch, Settings
from facesearch.ingest.report import IngestReport

from ..conftest import register


def gallery_rows(manifest: list[dict[str, str]]) -> list[dict[str, str]]:
    """LFW people with 2+ photos, 60 single-photo LFW people as distractors, and every
    deepface, face_recognition, CompreFace, insightface, facenet and scikit-image photo."""
    per_person = Counter(r["identity"] for r in manifest if r["path"].startswith("lfw/"))
    singles = 0
    rows = []
    for r in manifest:
        if r["path"].startswith("lfw/"):
            if per_person[r["identity"]] >= 2:
                rows.append(r)
            elif singles < 60:
                singles += 1
                rows.append(r)
        elif not r["path"].startswith(("glint360k", "retinaface")):
            rows.append(r)
    return rows


class Gallery:
    def __init__(
        self, engine: FaceSearch, report: IngestReport, rows: list[dict[str, str]], root: Path
    ) -> None:
        self.engine = engine
        self.report = report
        self.rows = rows
        self.root = root

    def path(self, rel: str) -> Path:
        return (self.root / rel).resolve()


@pytest.fixture(scope="session")
def gallery(
    dev: Path, manifest: list[dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gallery]:
    rows = gallery_rows(manifest)
    home = tmp_path_factory.mktemp("gallery") / "home"
    with FaceSearch(Settings(home=home, workers=2)) as engine:
        register(engine, "dev")
        report = engine.ingest([dev / r["path"] for r in rows], source="dev")
        yield Gallery(engine, report, rows, dev)
