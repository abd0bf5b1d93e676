from __future__ import annotations

from pathlib import Path

from facesearch import FaceSearch

from ..conftest import register


def test_search_finds_the_same_person_first(engine: FaceSearch, dev: Path) -> None:
    examples = dev / "face_recognition" / "examples"
    register(engine, "t")
    report = engine.ingest([examples / "obama.jpg", examples / "biden.jpg"], source="t")
    assert report.images_added == 2 and report.faces_indexed == 2
    [result] = engine.search(examples / "obama2.jpg")
    assert result.matches[0].image.path.endswith("obama.jpg")
    assert result.matches[0].is_match
    assert not result.matches[1].is_match
