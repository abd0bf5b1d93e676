"""The vision ports' contract, run against every detector and embedder in the registry.

An adapter is added by registering it in ``facesearch.vision.registry``: the fixtures below
are parametrised over the registry's names, so it is tested here with no other change
(``MARKS`` adds markers, e.g. ``gpu``, to an adapter that needs them). Embedders are tested
on the faces of every detector, since ``faces.detector`` and ``faces.embedder`` are set
independently.

What the engine relies on: faces come largest first (the default probe face is face 0, and
the per-image cap keeps the largest); one unit-length row per face, in the order given; the
same pixels always give the same answer, in any process (ingest workers build their own
copies of the models); the model key names what made the vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from facesearch.domain import BoundingBox, DetectedFace, ModelId
from facesearch.imaging import DecodeLimits, decode_image
from facesearch.vision.ports import Embeddings, FaceDetector, FaceEmbedder, RGBImage
from facesearch.vision.registry import DETECTORS, EMBEDDERS, ModelSpec, OnnxModelFile

from ..tiny_onnx import write_tiny_net

# Markers for adapters that need something not everywhere (a GPU, a model download).
MARKS: dict[str, list[pytest.MarkDecorator]] = {}

SINGLE = "face_recognition/examples/obama.jpg"
SAME_PERSON = "face_recognition/examples/obama2.jpg"
OTHER_PERSON = "face_recognition/examples/biden.jpg"
PARTIAL = "face_recognition/tests/test_images/obama_partial_face.jpg"
# Group photos with faces of different sizes, and how many faces each shows.
GROUPS = {
    "face_recognition/examples/two_people.jpg": 2,
    "compreface/000_5.jpg": 5,
    "compreface/015_6.jpg": 6,
}
NO_FACE = ["skimage/coffee.png", "skimage/brick.png"]

_rng = np.random.default_rng(7)
_noise = _rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
# Inputs a decoder can hand over that are not photos of anyone.
DEGENERATE: dict[str, Callable[[], RGBImage]] = {
    "1x1": lambda: np.zeros((1, 1, 3), np.uint8),
    "2x2": lambda: np.full((2, 2, 3), 255, np.uint8),
    "16x16 grey": lambda: np.full((16, 16, 3), 128, np.uint8),
    "1x300 strip": lambda: np.full((1, 300, 3), 90, np.uint8),
    "300x1 strip": lambda: np.full((300, 1, 3), 90, np.uint8),
    "3x2000 strip": lambda: np.full((3, 2000, 3), 200, np.uint8),
    "black 300x400": lambda: np.zeros((300, 400, 3), np.uint8),
    "noise 300x400": lambda: _noise.copy(),
    "mirrored view of noise": lambda: _noise[:, ::-1],
    "flat 2000x3000": lambda: np.full((2000, 3000, 3), 200, np.uint8),
}
# Flat or noisy images large enough that no adapter should call them a face.
EMPTY = ["black 300x400", "noise 300x400", "flat 2000x3000", "1x300 strip", "3x2000 strip"]


def _embedder_spec(name: str, folder: Path) -> ModelSpec:
    """The spec of a registered embedder; an operator's own ONNX model is the tests' small
    generated network (not a face model: it is held to the plumbing, not to recognition)."""
    if name != "onnx":
        return ModelSpec(embedder=name)
    path = folder / "tiny.onnx"
    if not path.exists():
        write_tiny_net(path)
    return ModelSpec(
        embedder=name, onnx_model=OnnxModelFile(path=path, name="tiny-test-net", version="1")
    )


def _params(names: list[str]) -> list[object]:
    return [pytest.param(n, marks=MARKS.get(n, []), id=n) for n in names]


@pytest.fixture(scope="module", params=_params(sorted(DETECTORS)))
def detector_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def detector(detector_name: str) -> FaceDetector:
    return ModelSpec(detector=detector_name).build_detector()


@pytest.fixture(scope="module", params=_params(sorted(EMBEDDERS)))
def embedder_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def models_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def embedder(embedder_name: str, models_folder: Path) -> FaceEmbedder:
    return _embedder_spec(embedder_name, models_folder).build_embedder()


@pytest.fixture(scope="module")
def photo(dev: Path) -> Callable[[str], RGBImage]:
    limits = DecodeLimits(max_bytes=50 * 1024 * 1024, max_pixels=60_000_000)
    cache: dict[str, RGBImage] = {}

    def load(rel: str) -> RGBImage:
        if rel not in cache:
            cache[rel] = decode_image((dev / rel).read_bytes(), limits).pixels
        return cache[rel]

    return load


def _inside(box: BoundingBox, image: RGBImage) -> bool:
    height, width = int(image.shape[0]), int(image.shape[1])
    return 0 <= box.x1 < box.x2 <= width and 0 <= box.y1 < box.y2 <= height


def _unit_rows(vectors: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4))


# -- FaceDetector ------------------------------------------------------------------------


def test_the_detector_answers_to_its_registered_name(
    detector: FaceDetector, detector_name: str
) -> None:
    assert detector.name == detector_name


def test_a_face_has_a_box_inside_the_image_and_five_landmarks_near_it(
    detector: FaceDetector, photo: Callable[[str], RGBImage]
) -> None:
    for rel in (SINGLE, PARTIAL, *GROUPS):
        image = photo(rel)
        faces = detector.detect_faces(image)
        assert faces, rel
        for face in faces:
            assert isinstance(face, DetectedFace)
            assert _inside(face.box, image), (rel, face.box)
            assert np.isfinite(face.score) and np.isfinite(face.sharpness) and face.sharpness >= 0
            assert len(face.landmarks) == 5, rel
            margin = max(face.box.width, face.box.height) // 2
            for x, y in face.landmarks:
                assert face.box.x1 - margin <= x <= face.box.x2 + margin, (rel, face)
                assert face.box.y1 - margin <= y <= face.box.y2 + margin, (rel, face)


def test_five_points_when_given_are_in_arcface_order_on_the_face(
    detector: FaceDetector, photo: Callable[[str], RGBImage]
) -> None:
    """ArcFace-style embedders align from ``five_points``: eyes left then right, nose,
    mouth corners left then right, on the face's box (upright faces in these photos)."""
    for rel in (SINGLE, *GROUPS):
        for face in detector.detect_faces(photo(rel)):
            if face.five_points is None:
                continue
            assert len(face.five_points) == 5, rel
            (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = face.five_points
            assert lex < nx < rex and lmx < rmx, (rel, face.five_points)
            assert max(ley, rey) < ny < min(lmy, rmy), (rel, face.five_points)
            for x, y in face.five_points:
                assert face.box.x1 <= x <= face.box.x2 and face.box.y1 <= y <= face.box.y2


def test_one_face_is_found_once(detector: FaceDetector, photo: Callable[[str], RGBImage]) -> None:
    for rel in (SINGLE, SAME_PERSON, OTHER_PERSON):
        assert len(detector.detect_faces(photo(rel))) == 1, rel


def test_group_photo_faces_come_largest_first(
    detector: FaceDetector, photo: Callable[[str], RGBImage]
) -> None:
    for rel, shown in GROUPS.items():
        faces = detector.detect_faces(photo(rel))
        assert 2 <= len(faces) <= shown, rel
        areas = [f.box.area for f in faces]
        assert areas == sorted(areas, reverse=True), rel


def test_detection_is_deterministic_across_calls_and_instances(
    detector: FaceDetector, detector_name: str, photo: Callable[[str], RGBImage]
) -> None:
    # Ingest workers build their own copy from the spec: it must find the same faces.
    fresh = ModelSpec(detector=detector_name).build_detector()
    for rel in (SINGLE, *GROUPS):
        image = photo(rel)
        first = detector.detect_faces(image)
        assert detector.detect_faces(image) == first, rel
        assert fresh.detect_faces(image) == first, rel


def test_a_photo_without_a_face_gives_no_face(
    detector: FaceDetector, photo: Callable[[str], RGBImage]
) -> None:
    for rel in NO_FACE:
        assert detector.detect_faces(photo(rel)) == [], rel
    for name in EMPTY:
        assert detector.detect_faces(DEGENERATE[name]()) == [], name


@pytest.mark.parametrize("case", sorted(DEGENERATE))
def test_degenerate_images_give_faces_inside_them_and_are_left_as_they_were(
    detector: FaceDetector, case: str
) -> None:
    image = DEGENERATE[case]()
    before = image.copy()
    faces = detector.detect_faces(image)
    assert isinstance(faces, list)
    assert all(_inside(f.box, image) for f in faces), faces
    np.testing.assert_array_equal(image, before)


def test_the_detector_leaves_the_photo_as_it_was(
    detector: FaceDetector, photo: Callable[[str], RGBImage]
) -> None:
    image = photo(SINGLE).copy()
    detector.detect_faces(image)
    np.testing.assert_array_equal(image, photo(SINGLE))


# -- FaceEmbedder ----------------------------------------------------------------------


def test_the_model_key_names_name_version_dimension_and_metric(embedder: FaceEmbedder) -> None:
    model = embedder.model
    assert isinstance(model, ModelId)
    assert model.name and model.version
    assert isinstance(model.dim, int) and model.dim > 0
    assert model.metric == "cosine"  # the indexes compare unit vectors by dot product
    assert ModelId.from_key(model.key) == model


def test_embeddings_are_unit_float32_rows_one_per_face(
    detector: FaceDetector, embedder: FaceEmbedder, photo: Callable[[str], RGBImage]
) -> None:
    for rel in (SINGLE, PARTIAL, *GROUPS):
        image = photo(rel)
        faces = detector.detect_faces(image)
        vectors = embedder.embed_faces(image, faces)
        assert vectors.dtype == np.float32, rel
        assert vectors.shape == (len(faces), embedder.model.dim), rel
        assert np.isfinite(vectors).all() and _unit_rows(vectors), rel


def test_no_face_gives_an_empty_array_of_the_right_shape(
    embedder: FaceEmbedder, photo: Callable[[str], RGBImage]
) -> None:
    for image in (photo(SINGLE), photo(NO_FACE[0])):
        vectors = embedder.embed_faces(image, [])
        assert vectors.shape == (0, embedder.model.dim)
        assert vectors.dtype == np.float32


def test_rows_follow_the_order_of_the_faces_given(
    detector: FaceDetector, embedder: FaceEmbedder, photo: Callable[[str], RGBImage]
) -> None:
    rel = "compreface/015_6.jpg"
    image = photo(rel)
    faces = detector.detect_faces(image)
    together = embedder.embed_faces(image, faces)
    backwards = embedder.embed_faces(image, faces[::-1])
    np.testing.assert_allclose(backwards[::-1], together, atol=1e-5)
    for i in (0, len(faces) - 1):
        alone = embedder.embed_faces(image, [faces[i]])
        np.testing.assert_allclose(alone[0], together[i], atol=1e-5)
    # Different faces give different rows (no row copied from another).
    sims = together @ together.T
    assert (sims[~np.eye(len(faces), dtype=bool)] < 0.999).all()


def test_embedding_is_deterministic_across_calls_and_instances(
    detector: FaceDetector,
    embedder: FaceEmbedder,
    embedder_name: str,
    models_folder: Path,
    photo: Callable[[str], RGBImage],
) -> None:
    fresh = _embedder_spec(embedder_name, models_folder).build_embedder()
    assert fresh.model == embedder.model
    for rel in (SINGLE, "face_recognition/examples/two_people.jpg"):
        image = photo(rel)
        faces = detector.detect_faces(image)
        first = embedder.embed_faces(image, faces)
        np.testing.assert_allclose(embedder.embed_faces(image, faces), first, atol=1e-6)
        np.testing.assert_allclose(fresh.embed_faces(image, faces), first, atol=1e-6)


def test_the_same_person_is_closer_than_another(
    detector: FaceDetector, embedder: FaceEmbedder, photo: Callable[[str], RGBImage]
) -> None:
    def largest(rel: str) -> Embeddings:
        image = photo(rel)
        return embedder.embed_faces(image, detector.detect_faces(image)[:1])

    [obama], [obama2], [biden] = largest(SINGLE), largest(SAME_PERSON), largest(OTHER_PERSON)
    assert float(obama @ obama2) > float(obama @ biden)


@pytest.mark.parametrize("case", sorted(DEGENERATE))
def test_whatever_is_found_in_a_degenerate_image_embeds_to_unit_rows(
    detector: FaceDetector, embedder: FaceEmbedder, case: str
) -> None:
    image = DEGENERATE[case]()
    before = image.copy()
    faces = detector.detect_faces(image)
    vectors = embedder.embed_faces(image, faces)
    assert vectors.shape == (len(faces), embedder.model.dim)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all() and _unit_rows(vectors)
    np.testing.assert_array_equal(image, before)


def test_a_face_cut_by_the_image_edge_embeds_to_a_unit_row(
    detector: FaceDetector, embedder: FaceEmbedder, photo: Callable[[str], RGBImage]
) -> None:
    image = photo(SINGLE)
    [face] = detector.detect_faces(image)
    # Keep the left half of the face only: its box now runs into the image's right edge.
    cut = np.ascontiguousarray(image[:, : (face.box.x1 + face.box.x2) // 2])
    edge = DetectedFace(
        box=BoundingBox(face.box.x1, face.box.y1, cut.shape[1], face.box.y2),
        score=face.score,
        landmarks=tuple((min(x, cut.shape[1] - 1.0), y) for x, y in face.landmarks),
    )
    vectors = embedder.embed_faces(cut, [edge])
    assert vectors.shape == (1, embedder.model.dim)
    assert np.isfinite(vectors).all() and _unit_rows(vectors)
