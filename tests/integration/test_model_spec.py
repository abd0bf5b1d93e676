"""Every process uses the engine's models: ingest workers and the server's threads embed
with the model whose key the catalog records, never with a dlib model built behind it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from facesearch import ConfigError, FaceSearch, Settings
from facesearch.app import create_app
from facesearch.domain import DetectedFace, ModelId
from facesearch.ingest.analyse import analyse, sha256_of
from facesearch.vision.ports import Embeddings, FaceEmbedder, RGBImage
from facesearch.vision.registry import ModelSpec

from ..conftest import register

PHOTOS = [
    "face_recognition/examples/obama.jpg",
    "face_recognition/examples/biden.jpg",
    "face_recognition/examples/two_people.jpg",
    "deepface/img1.jpg",
    "skimage/coffee.png",
]


class MirroredEmbedder:
    """Another model: the engine's default embedder, its dimensions reversed and every
    other sign flipped (an orthogonal map, so vectors stay unit length). A deterministic
    function of the pixels whose vectors differ from dlib's, under its own model key."""

    def __init__(self) -> None:
        self.inner: FaceEmbedder = ModelSpec().build_embedder()
        dim = self.inner.model.dim
        self.model = ModelId(name="mirrored-test-embedder", version="1", dim=dim, metric="cosine")
        self._signs = np.where(np.arange(dim) % 2 == 0, 1.0, -1.0).astype(np.float32)

    def embed_faces(self, image: RGBImage, faces: Sequence[DetectedFace]) -> Embeddings:
        raw = self.inner.embed_faces(image, faces)
        out: Embeddings = np.ascontiguousarray(raw[:, ::-1] * self._signs, dtype=np.float32)
        return out


@pytest.fixture(scope="module")
def mirrored() -> MirroredEmbedder:
    return MirroredEmbedder()


@pytest.fixture(scope="module")
def ingested(
    tmp_path_factory: pytest.TempPathFactory, dev: Path, mirrored: MirroredEmbedder
) -> Iterator[FaceSearch]:
    """A home ingested by two worker processes, with a non-dlib embedder on the engine."""
    home = tmp_path_factory.mktemp("spec") / "home"
    with FaceSearch(Settings(home=home, workers=2), embedder=mirrored) as engine:
        register(engine, "dev")
        report = engine.ingest([dev / p for p in PHOTOS], source="dev")
        assert report.images_added == len(PHOTOS) and not report.failed
        assert report.faces_indexed >= 5
        yield engine


def test_workers_store_the_engines_embeddings_under_its_model_key(
    ingested: FaceSearch, mirrored: MirroredEmbedder, dev: Path
) -> None:
    catalog = ingested.catalog
    assert catalog.model_key() == mirrored.model.key
    for rel in PHOTOS:
        data = (dev / rel).read_bytes()
        expected = analyse(
            data,
            sha256_of(data),
            ingested.limits,
            ingested.settings.faces,
            ingested.detector,
            mirrored,
        )
        image_id = catalog.image_id_by_sha(expected.sha256)
        assert image_id is not None, rel
        stored = catalog.get_images([image_id])[image_id]
        assert [f.box for f in stored.faces] == [f.box for f in expected.faces], rel
        if not stored.faces:
            continue
        vectors = catalog.embeddings([f.id for f in stored.faces])
        assert vectors.shape == expected.embeddings.shape, rel
        np.testing.assert_allclose(vectors, expected.embeddings, atol=1e-5, err_msg=rel)


def test_searching_an_ingested_photo_finds_it_at_similarity_one(
    ingested: FaceSearch, dev: Path
) -> None:
    [result] = ingested.search(dev / PHOTOS[0])
    best = result.matches[0]
    assert Path(best.image.path).name == "obama.jpg"
    assert best.similarity > 0.999


def test_the_servers_model_threads_use_the_engines_embedder(
    tmp_path: Path, dev: Path, mirrored: MirroredEmbedder
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        workers=1,
        api={"auth": False},
        governance={"api_require_purpose": False},
    )
    with (
        FaceSearch(settings, embedder=mirrored) as engine,
        TestClient(create_app(engine), base_url="https://testserver") as client,
    ):
        register(engine, "dev")
        engine.ingest([dev / p for p in PHOTOS[:2]], source="dev")
        for rel in PHOTOS[:2]:
            with open(dev / rel, "rb") as fh:
                response = client.post("/v1/search", files={"image": (Path(rel).name, fh)})
            assert response.status_code == 200, response.text
            best = response.json()["matches"][0]
            assert best["file_name"] == Path(rel).name
            assert best["similarity"] > 0.999


def test_an_unknown_model_name_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", faces={"embedder": "arcface-r100"})
    with pytest.raises(ConfigError, match=r"'arcface-r100'.*dlib-resnet"):
        FaceSearch(settings)
    assert not (tmp_path / "home").exists()  # refused before a home is made


def test_the_cli_names_an_unknown_detector_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "h").mkdir()  # an existing home: the settings are checked when it is opened
    done = subprocess.run(
        [sys.executable, "-m", "facesearch.cli", "stats", "--home", str(tmp_path / "h")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FACESEARCH_FACES__DETECTOR": "yolo"},
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "unknown face detector 'yolo'" in line and "dlib-hog, retinaface" in line


def test_ingest_on_threads_stores_what_this_process_would(dev: Path, tmp_path: Path) -> None:
    """The threads executor: each thread builds its own models from the spec and the
    stored faces and vectors are those of an analysis in this process."""
    settings = Settings(home=tmp_path / "home", workers=2, executor="threads")
    with FaceSearch(settings) as engine:
        register(engine, "dev")
        report = engine.ingest([dev / p for p in PHOTOS], source="dev")
        assert report.images_added == len(PHOTOS) and not report.failed
        for rel in PHOTOS:
            data = (dev / rel).read_bytes()
            expected = analyse(
                data,
                sha256_of(data),
                engine.limits,
                engine.settings.faces,
                engine.detector,
                engine.embedder,
            )
            image_id = engine.catalog.image_id_by_sha(expected.sha256)
            assert image_id is not None, rel
            stored = engine.catalog.get_images([image_id])[image_id]
            assert [f.box for f in stored.faces] == [f.box for f in expected.faces], rel
            if stored.faces:
                vectors = engine.catalog.embeddings([f.id for f in stored.faces])
                np.testing.assert_allclose(vectors, expected.embeddings, atol=1e-5, err_msg=rel)
