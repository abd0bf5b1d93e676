"""Alignment and quality measures on aligned face chips."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def sharpness(chip: npt.NDArray[np.uint8]) -> float:
    """Variance of the Laplacian of the grey chip: low values mean a blurred face.

    Computed on the aligned chip, so faces of every size are measured at one scale.
    """
    grey = chip.astype(np.float32).mean(axis=2) if chip.ndim == 3 else chip.astype(np.float32)
    lap = (
        -4.0 * grey[1:-1, 1:-1]
        + grey[:-2, 1:-1]
        + grey[2:, 1:-1]
        + grey[1:-1, :-2]
        + grey[1:-1, 2:]
    )
    return float(lap.var())


def flip(chip: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The mirror image of an aligned chip (for flip-averaged embeddings)."""
    return np.ascontiguousarray(chip[:, ::-1])


def normalize(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Scale each row to unit length, so that a dot product is the cosine similarity."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: npt.NDArray[np.float32] = (vectors / norms).astype(np.float32)
    return out


# InsightFace's five points of a 112 x 112 ArcFace chip, in ArcFace order (eye on the
# image's left, eye on the image's right, nose tip, mouth corner left, mouth corner right).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
ARCFACE_SIZE = 112


def arcface_template(size: int) -> npt.NDArray[np.float64]:
    """The template's points for a square chip of ``size`` pixels (scaled from 112)."""
    out: npt.NDArray[np.float64] = ARCFACE_TEMPLATE * (size / ARCFACE_SIZE)
    return out


def similarity_transform(source: npt.ArrayLike, target: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The 2 x 3 similarity (rotation, uniform scale, translation; no reflection) that maps
    ``source`` points closest to ``target`` points in least squares (Umeyama, 1991).

    Two points or more, as N x 2 (x, y) arrays.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError("need two or more matching (x, y) points")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    variance = (src_c**2).sum() / len(src)
    scale = float((s * sign).sum() / variance) if variance > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def warp_affine(
    image: npt.NDArray[np.uint8], matrix: npt.NDArray[np.float64], size: int
) -> npt.NDArray[np.uint8]:
    """The ``size`` x ``size`` chip whose pixel (x, y) is the image at ``matrix``'s inverse
    of (x, y), bilinear; black outside the image. ``matrix`` maps image to chip (2 x 3)."""
    forward = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)[:2]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    height, width = image.shape[:2]
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    fx, fy = sx - x0, sy - y0
    pixels = image.reshape(height, width, -1).astype(np.float64)
    out = np.zeros((size, size, pixels.shape[2]))
    for dy, dx, weight in (
        (0, 0, (1 - fx) * (1 - fy)),
        (0, 1, fx * (1 - fy)),
        (1, 0, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        px, py = x0 + dx, y0 + dy
        inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
        sample = pixels[np.clip(py, 0, height - 1), np.clip(px, 0, width - 1)]
        out += np.where(inside[..., None], sample, 0.0) * weight[..., None]
    chip = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return chip.reshape(size, size, *image.shape[2:])


def arcface_chip(
    image: npt.NDArray[np.uint8], points: npt.ArrayLike, size: int = ARCFACE_SIZE
) -> npt.NDArray[np.uint8]:
    """The face aligned to the ArcFace template: from its five points in ArcFace order, or
    from the two eye centres alone (the template's first two points) when only those are
    known."""
    src = np.asarray(points, dtype=np.float64)
    matrix = similarity_transform(src, arcface_template(size)[: len(src)])
    return warp_affine(image, matrix, size)


def eye_centres(dlib_points: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The two eye centres, in ArcFace order, from dlib's 5-point shape (two corners of the
    eye on the image's right, two of the eye on the image's left, the base of the nose)."""
    pts = np.asarray(dlib_points, dtype=np.float64)
    return np.array([pts[2:4].mean(axis=0), pts[0:2].mean(axis=0)])
