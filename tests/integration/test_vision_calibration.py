"""The models on real dev photos: aligned crops, no-face photos, the default threshold."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from facesearch.config import DEFAULT_MATCH_THRESHOLD
from facesearch.imaging import DecodeLimits, decode_image
from facesearch.vision.align import flip, normalize
from facesearch.vision.dlib_models import DlibFaceDetector, DlibFaceEmbedder
from facesearch.vision.ports import RGBImage


@pytest.fixture(scope="module")
def detector() -> DlibFaceDetector:
    return DlibFaceDetector()


@pytest.fixture(scope="module")
def embedder() -> DlibFaceEmbedder:
    return DlibFaceEmbedder()


def pixels(path: Path) -> RGBImage:
    return decode_image(path.read_bytes(), DecodeLimits()).pixels


def embed_largest(detector: DlibFaceDetector, embedder: DlibFaceEmbedder, path: Path) -> np.ndarray:
    image = pixels(path)
    faces = detector.detect_faces(image)
    assert faces, f"no face found in {path.name}"
    return embedder.embed_faces(image, faces[:1])[0]


def test_aligned_crops_yield_one_face_that_matches_its_person(
    detector: DlibFaceDetector, embedder: DlibFaceEmbedder, dev: Path
) -> None:
    crops = dev / "glint360k_celebs"
    obama = [embed_largest(detector, embedder, crops / "Barack_Obama" / f"{i}.png") for i in (0, 1)]
    other = embed_largest(detector, embedder, crops / "Miley_Cyrus" / "6754.png")
    assert float(obama[0] @ obama[1]) >= DEFAULT_MATCH_THRESHOLD
    assert float(obama[0] @ other) < DEFAULT_MATCH_THRESHOLD


def test_photos_without_faces_yield_no_face(
    detector: DlibFaceDetector, manifest: list[dict[str, str]], dev: Path
) -> None:
    nofaces = [row["path"] for row in manifest if row["kind"] == "noface"]
    assert len(nofaces) >= 10
    found = {p: n for p in nofaces if (n := len(detector.detect_faces(pixels(dev / p))))}
    assert found == {}


def test_default_threshold_rejects_different_people(
    detector: DlibFaceDetector,
    embedder: DlibFaceEmbedder,
    manifest: list[dict[str, str]],
    dev: Path,
) -> None:
    # LFW people with a single photo: every pair among them is two different people.
    counts: dict[str, int] = {}
    for row in manifest:
        counts[row["identity"]] = counts.get(row["identity"], 0) + 1
    singles = [
        r["path"] for r in manifest if r["path"].startswith("lfw/") and counts[r["identity"]] == 1
    ][:14]
    vectors = [embed_largest(detector, embedder, dev / p) for p in singles]
    scores = [float(a @ b) for a, b in itertools.combinations(vectors, 2)]
    assert len(scores) == 91
    assert max(scores) < DEFAULT_MATCH_THRESHOLD


def test_flip_averaged_embedding_is_the_mean_of_a_chip_and_its_mirror(
    detector: DlibFaceDetector, embedder: DlibFaceEmbedder, dev: Path
) -> None:
    image = pixels(dev / "face_recognition" / "examples" / "biden.jpg")
    faces = detector.detect_faces(image)[:1]
    [chip] = embedder.chips(image, faces)
    raw = embedder.describe([chip, flip(chip)])
    expected = normalize(raw[:1] + raw[1:])
    np.testing.assert_allclose(embedder.embed_faces(image, faces), expected, atol=1e-5)
    assert embedder.model.version.endswith("+flip")
