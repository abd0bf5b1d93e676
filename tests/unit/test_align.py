"""ArcFace alignment maths: the similarity transform and the warp, on exact numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facesearch.vision.align import (
    ARCFACE_TEMPLATE,
    arcface_chip,
    arcface_template,
    eye_centres,
    similarity_transform,
    warp_affine,
)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    out: np.ndarray = points @ matrix[:, :2].T + matrix[:, 2]
    return out


def test_a_known_similarity_is_recovered_exactly() -> None:
    angle, scale, shift = math.radians(20), 2.5, np.array([30.0, -12.0])
    rotation = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    source = ARCFACE_TEMPLATE
    target = source @ rotation.T + shift
    matrix = similarity_transform(source, target)
    assert np.allclose(matrix[:, :2], rotation, atol=1e-9)
    assert np.allclose(matrix[:, 2], shift, atol=1e-9)
    assert np.allclose(apply(matrix, source), target, atol=1e-9)


def test_a_mirrored_face_is_not_reflected_into_place() -> None:
    # A face seen in a mirror: the best similarity keeps handedness (no reflection).
    target = ARCFACE_TEMPLATE
    source = target * np.array([-1.0, 1.0])
    matrix = similarity_transform(source, target)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_two_points_fix_the_transform_three_points_may_not_disagree() -> None:
    eyes = np.array([[100.0, 200.0], [160.0, 200.0]])
    matrix = similarity_transform(eyes, ARCFACE_TEMPLATE[:2])
    assert np.allclose(apply(matrix, eyes), ARCFACE_TEMPLATE[:2], atol=1e-9)
    with pytest.raises(ValueError, match="two or more"):
        similarity_transform(eyes[:1], ARCFACE_TEMPLATE[:1])
    with pytest.raises(ValueError, match="two or more"):
        similarity_transform(eyes, ARCFACE_TEMPLATE[:3])


def test_the_template_scales_with_the_chip() -> None:
    assert np.allclose(arcface_template(224), ARCFACE_TEMPLATE * 2)


def test_the_warp_samples_the_image_where_the_matrix_says() -> None:
    image = np.zeros((50, 60, 3), dtype=np.uint8)
    image[10, 20] = (255, 128, 7)
    # Shift by (-15, -5) and scale by 2: image (20, 10) lands on chip (10, 10).
    matrix = np.array([[2.0, 0.0, -30.0], [0.0, 2.0, -10.0]])
    chip = warp_affine(image, matrix, 16)
    assert chip.shape == (16, 16, 3) and chip.dtype == np.uint8
    assert chip[10, 10].tolist() == [255, 128, 7]
    # Half way between two source pixels: the mean of the marked pixel and black.
    assert chip[10, 11].tolist() == [128, 64, 4]
    assert chip[0, 0].tolist() == [0, 0, 0]


def test_outside_the_image_is_black() -> None:
    image = np.full((10, 10, 3), 200, dtype=np.uint8)
    chip = warp_affine(image, np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 5.0]]), 20)
    assert chip[2, 2].tolist() == [0, 0, 0]
    assert chip[10, 10].tolist() == [200, 200, 200]


def test_a_face_at_the_template_points_gives_itself() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    chip = arcface_chip(image, ARCFACE_TEMPLATE)
    assert np.array_equal(chip, image)


def test_a_face_twice_as_large_and_shifted_is_aligned_back() -> None:
    rng = np.random.default_rng(1)
    small = rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)
    big = np.zeros((200, 200, 3), dtype=np.uint8)
    big[40:152, 30:142] = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    points = ARCFACE_TEMPLATE + np.array([30.0, 40.0])
    chip = arcface_chip(big, points, size=112)
    assert np.array_equal(chip, big[40:152, 30:142])
    # The same face from its eye centres alone.
    assert np.array_equal(arcface_chip(big, points[:2], size=112), chip)


def test_eye_centres_come_from_dlibs_corners_in_arcface_order() -> None:
    # dlib: eye on the image's right (outer, inner), eye on the image's left, nose base.
    dlib_points = [(80, 50), (70, 52), (30, 50), (40, 52), (55, 75)]
    assert eye_centres(dlib_points).tolist() == [[35.0, 51.0], [75.0, 51.0]]
