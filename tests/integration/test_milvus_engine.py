"""The engine over a Milvus index answers as over the local one, erases for good, and
comes back in step after Milvus was down.

Real photos (ingested once per module with dlib), a real Milvus server
(tests/engines/milvus.py). The two engines share one catalog: the local index is
rebuilt from it, so any difference in an answer is the index's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import facesearch
from facesearch import FaceSearch, Settings
from facesearch.domain import ProbeFace
from facesearch.errors import BackendUnavailable
from facesearch.index.ports import FaceFilter

from ..conftest import register
from ..engines import milvus as engine_plugin

pytestmark = [pytest.mark.milvus, pytest.mark.slow]

PEOPLE = (
    "Adel_Al-Jubeir",
    "Alberto_Fujimori",
    "Alejandro_Atchugarry",
    "Arantxa_Sanchez-Vicario",
    "Barbra_Streisand",
)


@dataclass
class Home:
    home: Path
    url: str
    photos: list[Path]

    def settings(self, milvus: bool) -> Settings:
        index = {"url": self.url} if milvus else {}
        return Settings(home=self.home, workers=1, index=index)  # type: ignore[arg-type]


def photos(dev: Path, manifest: list[dict[str, str]]) -> list[Path]:
    """Two photos of each of a few people (LFW)."""
    out = []
    for person in PEOPLE:
        rows = [r["path"] for r in manifest if r["path"].startswith(f"lfw/{person}/")][:2]
        out.extend(dev / r for r in rows)
    return out


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, dev: Path, manifest: list[dict[str, str]]
) -> Home:
    """Sources: lfw (DE) holds every photo, press (FR) a copy of three of them (ingested
    as duplicates: the faces' labels change without new faces), old (no place) expired."""
    server = engine_plugin.server()
    home = Home(
        tmp_path_factory.mktemp("milvus-engine") / "home",
        server.collection(f"engine_{time.time_ns()}"),
        photos(dev, manifest),
    )
    with FaceSearch(home.settings(milvus=True)) as fs:
        register(fs, "lfw", jurisdictions=("DE",))
        register(fs, "press", jurisdictions=("FR",))
        fs.ingest(home.photos, source="lfw")
        fs.ingest(home.photos[:3], source="press")
        assert fs.stats()["index"]["consistent"]
    return home


def probe_vectors(fs: FaceSearch) -> np.ndarray:
    ids = fs.catalog.face_ids()
    return fs.catalog.embeddings(ids.tolist())


def answers(fs: FaceSearch, sources: list[str] | None) -> list[list[tuple[int, float]]]:
    out = []
    for vector in probe_vectors(fs):
        result = fs.search_vector(
            vector,
            probe_face=ProbeFace(0, None, 1.0, 100),
            top_k=5,
            sources=sources,  # type: ignore[arg-type]
        )
        out.append([(m.image.id, round(m.similarity, 4)) for m in result.matches])
    return out


def test_source_filters_pushed_down_answer_as_the_catalogs_ids(built: Home) -> None:
    """Same matches, same order, same similarities, with and without source filters;
    the press copies were added as duplicates, so Milvus's labels had to follow."""
    got: dict[bool, Any] = {}
    for milvus in (True, False):
        with FaceSearch(built.settings(milvus)) as fs:
            got[milvus] = {
                str(s): answers(fs, s) for s in (None, ["press"], ["lfw"], ["press", "lfw"])
            }
            assert fs.stats()["index"]["kind"].startswith("milvus") == milvus
            copied = {image.id for image in fs.list_images(source="press")}
    assert got[True] == got[False]
    press = got[True]["['press']"]
    assert {i for row in press for i, _ in row} == copied  # only the copied photos
    assert copied and len(copied) < len({i for row in got[True]["None"] for i, _ in row})


def test_jurisdiction_and_expiry_filters_agree_with_the_catalog(built: Home) -> None:
    with FaceSearch(built.settings(milvus=True)) as fs:
        vectors = probe_vectors(fs)[:4]
        filters = [
            FaceFilter(jurisdictions=("FR",)),
            FaceFilter(jurisdictions=("de",)),
            FaceFilter(sources=("lfw",), jurisdictions=("FR",)),
            FaceFilter(now="2000-01-01T00:00:00+00:00"),
            FaceFilter(now="2999-01-01T00:00:00+00:00"),  # everything expired by then
        ]
        pushed = [fs.index.search(vectors, 20, where=w)[0] for w in filters]
    with FaceSearch(built.settings(milvus=False)) as fs:
        resolved = [fs.index.search(vectors, 20, where=w)[0] for w in filters]
    for a, b in zip(pushed, resolved, strict=True):
        assert np.array_equal(a, b)
    assert (pushed[-1] == -1).all() and (pushed[-2] >= 0).any()


def test_a_source_losing_its_jurisdiction_is_relabelled(built: Home) -> None:
    with FaceSearch(built.settings(milvus=True)) as fs:
        vectors = probe_vectors(fs)[:2]
        fs.update_source("press", jurisdictions=["IT"])
        try:
            fr = fs.index.search(vectors, 20, where=FaceFilter(jurisdictions=("FR",)))[0]
            it = fs.index.search(vectors, 20, where=FaceFilter(jurisdictions=("IT",)))[0]
            press = set(fs.catalog.face_ids(["press"]).tolist())
        finally:
            fs.update_source("press", jurisdictions=["FR"])
    assert (fr == -1).all()
    assert set(it[it >= 0].tolist()) == press


def test_erasure_compacts_milvus_and_the_receipt_says_when(
    built: Home, tmp_path: Path, milvus_url: Callable[[str], str]
) -> None:
    """The erased faces are out of Milvus at once, and the receipt says when the
    compaction that rewrote its segments without them finished."""
    url = milvus_url(f"erase_{time.time_ns()}")
    settings = Settings(home=tmp_path / "home", workers=1, index={"url": url})  # type: ignore[arg-type]
    with FaceSearch(settings) as fs:
        register(fs, "lfw")
        fs.ingest(built.photos[:4], source="lfw")
        image = fs.list_images()[0]
        face = image.faces[0].id
        vector = fs.catalog.embeddings([face])[0]
        receipt = fs.erase(image_ids=[image.id])
        assert receipt.faces_removed == len(image.faces) and receipt.index_erased_at
        assert face not in fs.index.ids()
        found, _ = fs.index.search(vector[None, :], 10)
        assert face not in found
    # That the compacted-away files then leave Milvus's storage (its garbage collector,
    # about 50 s later on the test server) is checked on the adapter itself:
    # tests/contract/test_vector_index.py::test_remove_takes_effect_at_once_and_compaction_erases


@pytest.fixture
def down_and_back(milvus_server: engine_plugin.MilvusServer) -> Iterator[Any]:
    """Stops the server for the test's first part; started again by ``back()``."""
    yield milvus_server
    milvus_server.start()


def test_a_command_on_milvus_prints_its_answer_and_no_client_noise(built: Home) -> None:
    # A fresh process, as a person runs it: pymilvus is imported there for the first time.
    command = ["stats", "--json", "--home", str(built.home), "--index", built.url]
    done = subprocess.run(
        [sys.executable, "-m", "facesearch", *command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(facesearch.__file__).parents[1])},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["index"]["consistent"] is True


def test_milvus_down_is_a_clear_error_and_missed_writes_come_back(
    built: Home,
    tmp_path: Path,
    milvus_url: Callable[[str], str],
    down_and_back: engine_plugin.MilvusServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from facesearch.app import create_app
    from facesearch.cli import main

    url = milvus_url(f"faults_{time.time_ns()}") + "?timeout=3"
    home = tmp_path / "home"
    settings = Settings(home=home, workers=1, index={"url": url}, api={"auth": False})  # type: ignore[arg-type]
    with FaceSearch(settings) as fs:
        register(fs, "lfw")
        fs.ingest(built.photos[:4], source="lfw")
        down_and_back.stop()
        # Searching: a clear error from the engine, the CLI and the API.
        with pytest.raises(BackendUnavailable, match=r"Milvus at 127\.0\.0\.1:"):
            fs.search(built.photos[0])
        code = main(["search", str(built.photos[0]), "--home", str(home), "--index", url])
        err = capsys.readouterr().err.strip()
        assert code != 0 and len(err.splitlines()) == 1 and "Traceback" not in err
        assert "Milvus" in err
        with (
            TestClient(create_app(fs), base_url="https://testserver") as client,
            open(built.photos[0], "rb") as fh,
        ):
            answer = client.post(
                "/v1/search",
                files={"image": ("p.jpg", fh, "image/jpeg")},
                data={"purpose": "test", "case_ref": "T-1"},
            )
        assert answer.status_code == 503 and answer.headers["Retry-After"]
        assert answer.json()["error"]["code"] == "backend_unavailable"
        # Ingesting: the catalog (the truth) keeps the photos, the index misses them.
        with pytest.raises(BackendUnavailable):
            fs.ingest(built.photos[4:8], source="lfw")
        stored = fs.catalog.face_state()
        down_and_back.start()
        fs.catch_up()  # the first call after Milvus returns repairs the missed writes
        assert fs.stats()["index"]["consistent"]
        assert fs.index.state().count == stored[0]
        hits = fs.search(built.photos[5])[0].matches
        assert hits and hits[0].similarity > 0.99
