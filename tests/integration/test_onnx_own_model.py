"""An operator's own ONNX model (``faces.embedder = "onnx"``): its name and version are
the home's model id, its dimension (512 here) flows through the catalog, the index, the
API and evaluation, and a home made with another model refuses it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from facesearch import ConfigError, FaceSearch, ModelMismatch, Settings
from facesearch.app import create_app

from ..conftest import register
from ..tiny_onnx import write_tiny_net

PHOTOS = [
    "face_recognition/examples/obama.jpg",
    "face_recognition/examples/biden.jpg",
    "face_recognition/examples/two_people.jpg",
]
KEY = "tiny-test-net@1/arcface112+flip/512/cosine"


def own_model(path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "embedder": "onnx",
        "onnx": {"path": path, "name": "tiny-test-net", "version": "1", **extra},
    }


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_net(tmp_path_factory.mktemp("net") / "tiny.onnx")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("own") / "home"


@pytest.fixture(scope="module")
def engine(net: Path, home: Path, dev: Path) -> Iterator[FaceSearch]:
    settings = Settings(
        home=home,
        workers=1,
        faces=own_model(net),
        api={"auth": False},
        governance={"api_require_purpose": False},
    )
    with FaceSearch(settings) as fs:
        register(fs, "dev")
        report = fs.ingest([dev / p for p in PHOTOS], source="dev")
        assert report.images_added == 3 and not report.failed
        yield fs


def test_the_home_records_the_configured_name_version_and_dimension(engine: FaceSearch) -> None:
    assert engine.catalog.model_key() == KEY
    vectors = engine.catalog.sample_embeddings(10)
    assert vectors.shape == (4, 512)  # obama, biden and the two people
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_search_finds_an_ingested_photo_through_python_and_http(
    engine: FaceSearch, dev: Path
) -> None:
    [result] = engine.search(dev / PHOTOS[0])
    assert result.model.key == KEY
    assert Path(result.matches[0].image.path).name == "obama.jpg"
    assert result.matches[0].similarity > 0.999
    with TestClient(create_app(engine), base_url="https://testserver") as client:
        with open(dev / PHOTOS[1], "rb") as fh:
            response = client.post("/v1/search", files={"image": ("biden.jpg", fh)})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["matches"][0]["file_name"] == "biden.jpg"
        assert body["matches"][0]["similarity"] > 0.999


def test_evaluation_runs_on_the_own_model(engine: FaceSearch, dev: Path, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "path_a,path_b,same\n"
        "face_recognition/examples/obama.jpg,face_recognition/examples/obama.jpg,1\n"
        "face_recognition/examples/obama.jpg,face_recognition/examples/biden.jpg,0\n"
    )
    report = engine.evaluate(pairs, dev)
    assert report["model"] == KEY
    assert report["pairs"] == 2 and report["roc_auc"] == 1.0


def test_a_home_made_with_another_model_is_refused(
    home: Path, engine: FaceSearch, dev: Path
) -> None:
    with FaceSearch(Settings(home=home, workers=1)) as dlib_engine:
        with pytest.raises(ModelMismatch, match="tiny-test-net"):
            dlib_engine.ingest([dev / "face_recognition/examples/obama2.jpg"], source="dev")
        with pytest.raises(ModelMismatch):
            dlib_engine.search(dev / PHOTOS[0])


def test_missing_or_wrong_settings_are_refused_with_what_is_wrong(
    net: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"faces.onnx.path.*faces.onnx.version"):
        FaceSearch(Settings(home=tmp_path / "a", faces={"embedder": "onnx", "onnx": {"name": "x"}}))
    bad_dim = Settings(home=tmp_path / "b", faces=own_model(net, dim=128))
    with pytest.raises(ConfigError, match=r"dim is 128 .* \(512,\)"):
        FaceSearch(bad_dim).embedder  # noqa: B018 - built on first use
    bad_size = Settings(home=tmp_path / "c", faces=own_model(net, input_size=224))
    with pytest.raises(ConfigError, match=r"input_size is 224 .* 112x112"):
        FaceSearch(bad_size).embedder  # noqa: B018
    missing = Settings(home=tmp_path / "d", faces=own_model(tmp_path / "none.onnx"))
    with pytest.raises(ConfigError, match="cannot read"):
        FaceSearch(missing).embedder  # noqa: B018


def test_the_models_command_shows_the_configured_model_and_the_homes(
    net: Path, home: Path, engine: FaceSearch
) -> None:
    env = {
        **os.environ,
        "FACESEARCH_FACES__EMBEDDER": "onnx",
        "FACESEARCH_FACES__ONNX__PATH": str(net),
        "FACESEARCH_FACES__ONNX__NAME": "tiny-test-net",
        "FACESEARCH_FACES__ONNX__VERSION": "1",
    }
    command = [sys.executable, "-m", "facesearch.cli", "models", "--home", str(home)]
    done = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert (info["model"], info["home_model"], info["home_accepts"]) == (KEY, KEY, True)
    assert info["embedders"]["onnx"] == f"configured: {net}"
    assert info["embedders"]["dlib-resnet"] == "installed"
    # The default model against this home: the mismatch is said, in words.
    env.pop("FACESEARCH_FACES__EMBEDDER")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"This home:  {KEY}: ANOTHER model" in done.stdout
    assert "reindex --re-embed" in done.stdout


@pytest.mark.parametrize(
    "catalog", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_re_embedding_moves_a_home_to_the_own_model_and_resumes(
    net: Path, dev: Path, tmp_path: Path, catalog: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if catalog == "postgres" else None
    where: dict[str, Any] = {"catalog": {"url": url}} if url else {}
    photos = tmp_path / "photos"
    photos.mkdir()
    for rel in PHOTOS:  # copies of the photos: one goes missing for a while
        shutil.copy(dev / rel, photos / Path(rel).name)
    home = tmp_path / "home"
    with FaceSearch(Settings(home=home, workers=1, **where)) as fs:
        register(fs, "dev")
        fs.ingest(sorted(photos.iterdir()), source="dev")
        dlib_key = fs.catalog.model_key()
        faces = fs.catalog.face_state()[0]
    assert dlib_key is not None and dlib_key != KEY and faces == 4

    settings = Settings(home=home, workers=1, faces=own_model(net), **where)
    (photos / "biden.jpg").rename(tmp_path / "biden.jpg")
    with FaceSearch(settings) as fs:
        first = fs.reembed()
        assert (first["switched"], first["images"], first["faces"]) == (False, 3, 3)
        assert [u["path"] for u in first["unreadable"]] == [str(photos / "biden.jpg")]
        assert fs.catalog.model_key() == dlib_key  # the home keeps its model meanwhile
        with pytest.raises(ModelMismatch):
            fs.search(photos / "obama.jpg")
    # The command line says the same, in words, and fails until the file is back.
    env = {
        **os.environ,
        "FACESEARCH_FACES__EMBEDDER": "onnx",
        "FACESEARCH_FACES__ONNX__PATH": str(net),
        "FACESEARCH_FACES__ONNX__NAME": "tiny-test-net",
        "FACESEARCH_FACES__ONNX__VERSION": "1",
        **({"FACESEARCH_CATALOG__URL": url} if url else {}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "facesearch.cli", "reindex", "--re-embed", "--home", str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"the home keeps {dlib_key}: 1 image could not be read" in done.stdout
    assert str(photos / "biden.jpg") in done.stdout

    (tmp_path / "biden.jpg").rename(photos / "biden.jpg")
    with FaceSearch(settings) as fs:
        second = fs.reembed()
        # Only the image left over is read again.
        assert (second["switched"], second["images"], second["faces"]) == (True, 1, 1)
        assert fs.catalog.model_key() == KEY
        assert fs.stats()["index"] == {"kind": "exact", "faces": 4, "consistent": True}
        [result] = fs.search(photos / "biden.jpg")
        assert result.matches[0].image.path == str(photos / "biden.jpg")
        assert result.matches[0].similarity > 0.999
        assert fs.catalog.sample_embeddings(10).shape == (4, 512)
        [entry] = fs.audit.entries(action="model.change")
        assert entry.details == {"previous_model": dlib_key, "model": KEY, "images": 3, "faces": 4}

    # The old model is now the other one: the home refuses it.
    with FaceSearch(Settings(home=home, workers=1, **where)) as fs, pytest.raises(ModelMismatch):
        fs.search(photos / "obama.jpg")


def test_an_export_that_takes_one_chip_gives_the_same_vectors(
    net: Path, tmp_path: Path, dev: Path
) -> None:
    from facesearch.imaging import DecodeLimits, decode_image
    from facesearch.vision.dlib_models import DlibFaceDetector
    from facesearch.vision.onnx.arcface import OnnxFaceEmbedder
    from facesearch.vision.onnx.model_file import OnnxModelFile

    single = write_tiny_net(tmp_path / "single.onnx", batch=1)
    image = decode_image((dev / PHOTOS[2]).read_bytes(), DecodeLimits()).pixels
    faces = DlibFaceDetector().detect_faces(image)
    assert len(faces) == 2
    vectors = [
        OnnxFaceEmbedder(OnnxModelFile(path=p, name="t", version="1")).embed_faces(image, faces)
        for p in (net, single)
    ]
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-5)
