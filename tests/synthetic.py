"""Seeded synthetic face embeddings for index tests (no photos needed)."""

from __future__ import annotations

import numpy as np

DIM = 128


def clustered(n: int, seed: int, groups: int = 200) -> np.ndarray:
    """Unit vectors, five per identity, identities in look-alike groups (as in galleries)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((groups, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    people = centres[rng.integers(0, groups, n // 5)] + 0.09 * rng.standard_normal((n // 5, DIM))
    people /= np.linalg.norm(people, axis=1, keepdims=True)
    faces = np.repeat(people, 5, axis=0) + 0.03 * rng.standard_normal((n, DIM))
    return (faces / np.linalg.norm(faces, axis=1, keepdims=True)).astype(np.float32)
