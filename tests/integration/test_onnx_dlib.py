"""dlib's network converted to ONNX is the same model as dlib's own runtime.

The converted graph's descriptors of the same chips must agree with dlib's to cosine
>= 0.9999 on real dev photos of every kind (LFW, group photos, crops, phone photos):
that is what lets both runtimes share one model id (docs/models.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesearch.imaging import DecodeLimits, decode_image
from facesearch.vision.dlib_models import DlibFaceDetector, DlibFaceEmbedder, face_chips
from facesearch.vision.onnx.dlib_resnet import OnnxDlibEmbedder, converted_name
from facesearch.vision.ports import RGBImage

# One photo or more of each kind of the dev set, among them a group photo (many faces in a
# batch) and a tight crop (the fallback face).
PHOTOS = (
    "face_recognition/examples/biden.jpg",
    "face_recognition/examples/obama.jpg",
    "compreface/011_3.jpg",
    "retinaface/test.jpg",
    "deepface/selfie-many-people.jpg",
    "glint360k_celebs/Barack_Obama/0.png",
    "glint360k_celebs/Miley_Cyrus/6754.png",
)


def pixels(path: Path) -> RGBImage:
    return decode_image(path.read_bytes(), DecodeLimits()).pixels


@pytest.fixture(scope="module")
def faces_of(dev: Path) -> list[tuple[RGBImage, list]]:  # type: ignore[type-arg]
    detector = DlibFaceDetector()
    lfw = sorted((dev / "lfw").rglob("*.jpg"))[:6]
    out = []
    for path in [dev / p for p in PHOTOS] + lfw:
        image = pixels(path)
        faces = detector.detect_faces(image)
        assert faces, path
        out.append((image, faces))
    return out


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[OnnxDlibEmbedder, Path]:
    cache = tmp_path_factory.mktemp("models")
    return OnnxDlibEmbedder(cache=cache), cache


def test_onnx_descriptors_match_dlibs_on_dev_photos(
    faces_of: list[tuple[RGBImage, list]],  # type: ignore[type-arg]
    converted: tuple[OnnxDlibEmbedder, Path],
) -> None:
    dlib_runtime = DlibFaceEmbedder()
    onnx_runtime, _ = converted
    chips = [chip for image, faces in faces_of for chip in face_chips(image, faces)]
    assert len(chips) >= 20
    ours = onnx_runtime.describe(chips)
    theirs = dlib_runtime.describe(chips)
    cosine = (ours * theirs).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    )
    assert cosine.min() >= 0.9999
    # Not only the direction: the raw descriptors themselves (dlib compares by distance).
    assert np.abs(ours - theirs).max() < 1e-3


def test_embeddings_of_both_runtimes_agree_and_share_the_model_id(
    faces_of: list[tuple[RGBImage, list]],  # type: ignore[type-arg]
    converted: tuple[OnnxDlibEmbedder, Path],
) -> None:
    dlib_runtime = DlibFaceEmbedder()
    onnx_runtime, _ = converted
    assert onnx_runtime.model == dlib_runtime.model
    for image, faces in faces_of:
        ours = onnx_runtime.embed_faces(image, faces)
        theirs = dlib_runtime.embed_faces(image, faces)
        assert ours.shape == theirs.shape == (len(faces), 128)
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        assert (ours * theirs).sum(axis=1).min() >= 0.9999


def test_the_conversion_is_cached_in_the_home_and_reused(
    converted: tuple[OnnxDlibEmbedder, Path],
) -> None:
    _, cache = converted
    stored = cache / converted_name()
    assert stored.is_file() and stored.stat().st_size > 20_000_000
    before = stored.stat().st_mtime_ns
    OnnxDlibEmbedder(cache=cache)
    assert stored.stat().st_mtime_ns == before
    assert [p.name for p in cache.iterdir()] == [stored.name]  # no temporary file left
