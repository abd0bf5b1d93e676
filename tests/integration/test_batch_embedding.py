"""Embedding across images: the faces of several photos in one batch give the vectors
each photo gives alone, for every embedder; a bad file in a batch fails alone; an ingest
in batches stores what an ingest image by image stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesearch import FaceSearch, Settings
from facesearch.config import Faces
from facesearch.imaging import DecodeLimits, decode_image
from facesearch.ingest.analyse import Analysis, analyse, analyse_batch, sha256_of
from facesearch.ingest.runner import job_size
from facesearch.vision.dlib_models import DlibFaceEmbedder
from facesearch.vision.embedding import ChipEmbedder, embed_images
from facesearch.vision.onnx.arcface import OnnxFaceEmbedder
from facesearch.vision.onnx.dlib_resnet import OnnxDlibEmbedder
from facesearch.vision.onnx.model_file import OnnxModelFile
from facesearch.vision.onnx.retinaface import RetinaFaceDetector
from facesearch.vision.ports import RGBImage

from ..conftest import register
from ..tiny_onnx import write_tiny_net

# No face, one face, two, a crowd, a tight crop: batches of uneven groups.
PHOTOS = (
    "skimage/coffee.png",
    "face_recognition/examples/obama.jpg",
    "face_recognition/examples/two_people.jpg",
    "deepface/selfie-many-people.jpg",
    "glint360k_celebs/Barack_Obama/0.png",
)


@pytest.fixture(scope="module")
def detector() -> RetinaFaceDetector:
    return RetinaFaceDetector()


@pytest.fixture(scope="module")
def images(dev: Path, detector: RetinaFaceDetector) -> list[tuple[RGBImage, list]]:  # type: ignore[type-arg]
    out = []
    for rel in PHOTOS:
        pixels = decode_image((dev / rel).read_bytes(), DecodeLimits()).pixels
        out.append((pixels, detector.detect_faces(pixels)))
    assert [len(f) > 0 for _, f in out] == [False, True, True, True, True]
    return out


def embedders(tmp: Path) -> dict[str, ChipEmbedder]:
    net = write_tiny_net(tmp / "tiny.onnx")
    spec = OnnxModelFile(path=net, name="tiny", version="1", input_size=112, dim=512)
    return {
        "dlib-resnet-onnx": OnnxDlibEmbedder(cache=tmp),
        "dlib-resnet": DlibFaceEmbedder(),
        "onnx (own model)": OnnxFaceEmbedder(spec),
    }


def test_one_batch_of_several_images_gives_each_image_its_own_vectors(
    images: list[tuple[RGBImage, list]],  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    for name, embedder in embedders(tmp_path).items():
        batched = embed_images(embedder, images)
        assert [len(v) for v in batched] == [len(f) for _, f in images], name
        for (pixels, faces), vectors in zip(images, batched, strict=True):
            alone = embedder.embed_faces(pixels, faces)
            assert vectors.dtype == np.float32 and vectors.shape == alone.shape, name
            np.testing.assert_allclose(vectors, alone, atol=2e-5, err_msg=name)
            if len(vectors):
                np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_an_embedder_without_a_batch_method_is_called_image_by_image(
    images: list[tuple[RGBImage, list]],  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    inner = OnnxDlibEmbedder(cache=tmp_path)
    calls: list[int] = []

    class OnlyPerImage:  # an operator's adapter with the port's one method
        model = inner.model

        def embed_faces(self, image: RGBImage, faces: list) -> np.ndarray:  # type: ignore[type-arg]
            calls.append(len(faces))
            return inner.embed_faces(image, faces)

    out = embed_images(OnlyPerImage(), images)
    assert calls == [len(f) for _, f in images]
    for vectors, expected in zip(out, embed_images(inner, images), strict=True):
        np.testing.assert_allclose(vectors, expected, atol=2e-5)


def test_a_bad_file_in_a_batch_fails_alone_with_its_reason(
    dev: Path, detector: RetinaFaceDetector, tmp_path: Path
) -> None:
    embedder = OnnxDlibEmbedder(cache=tmp_path)
    good = [(dev / rel).read_bytes() for rel in PHOTOS[1:3]]
    files = [good[0], b"not an image at all", good[1]]
    results = analyse_batch(
        [(data, sha256_of(data)) for data in files], DecodeLimits(), Faces(), detector, embedder
    )
    assert isinstance(results[1], str) and "image" in results[1]
    for data, result in zip(good, (results[0], results[2]), strict=True):
        assert isinstance(result, Analysis)
        alone = analyse(data, sha256_of(data), DecodeLimits(), Faces(), detector, embedder)
        assert [f.box for f in result.faces] == [f.box for f in alone.faces]
        np.testing.assert_allclose(result.embeddings, alone.embeddings, atol=2e-5)


def test_a_job_holds_up_to_the_batch_but_leaves_no_worker_idle() -> None:
    assert job_size(1000, 8, 2) == 8
    assert job_size(4, 8, 2) == 1  # four files, two workers: one file a job
    assert job_size(10, 8, 1) == 5
    assert job_size(0, 8, 2) == 1


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_an_ingest_in_batches_stores_what_one_image_at_a_time_stores(
    workers: int, dev: Path, tmp_path: Path
) -> None:
    photos = [dev / p for p in PHOTOS] + sorted((dev / "lfw").rglob("*.jpg"))[:11]
    stored = {}
    for batch in (1, 8):
        home = tmp_path / f"batch{batch}"
        settings = Settings(home=home, workers=workers, faces=Faces(batch_images=batch))
        with FaceSearch(settings) as engine:
            register(engine, "dev")
            report = engine.ingest(photos, source="dev")
            assert report.images_added == len(photos) and not report.failed
            catalog = engine.catalog
            faces = {}
            for path in photos:
                image_id = catalog.image_id_by_sha(sha256_of(path.read_bytes()))
                assert image_id is not None
                image = catalog.get_images([image_id])[image_id]
                vectors = catalog.embeddings([f.id for f in image.faces])
                faces[path.name] = ([f.box for f in image.faces], vectors)
            stored[batch] = faces
    assert stored[1].keys() == stored[8].keys()
    for name, (boxes, vectors) in stored[1].items():
        assert stored[8][name][0] == boxes, name
        np.testing.assert_allclose(stored[8][name][1], vectors, atol=2e-5, err_msg=name)
