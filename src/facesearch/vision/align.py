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
