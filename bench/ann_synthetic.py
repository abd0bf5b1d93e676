"""Seeded synthetic face embeddings for the ANN benchmarks: clustered, 128-d, unit length.

Identities belong to look-alike groups of GROUP_FACES faces (real galleries are not
uniform: people who look alike sit close together). The groups grow in number, not in
size, with the gallery, so every size has the same local structure. An identity's
centre is its group centre plus spread, drawn from an anisotropic Gaussian (real
embeddings use their dimensions unevenly); its faces are the centre plus small noise,
so two faces of one person have cosine similarity around 0.9, look-alikes around 0.6,
and strangers far less.
Chunks are generated independently from (seed, chunk number), so a 10M gallery is never
held twice in memory and any chunk can be regenerated.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

DIM = 128
FACES_PER_ID = 5
CHUNK = 100_000  # a multiple of FACES_PER_ID: identities never straddle chunks
NOISE = 0.03  # per-dimension noise around the identity centre
GROUP_FACES = 500  # faces per look-alike group (100 identities)
SPREAD = 0.09  # per-dimension spread of identities around their group centre
SCALES = (1.0 / np.sqrt(1.0 + np.arange(DIM) / 8.0)).astype(np.float32)

F32 = npt.NDArray[np.float32]


def _unit(x: F32) -> F32:
    out: F32 = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def n_groups(n_gallery: int) -> int:
    return max(1, n_gallery // GROUP_FACES)


def _groups(seed: int, count: int) -> F32:
    rng = np.random.default_rng([seed, 2**31])
    return _unit(rng.standard_normal((count, DIM), dtype=np.float32) * SCALES)


def _centres(seed: int, groups: int, rng: np.random.Generator, n: int) -> F32:
    groups_ = _groups(seed, groups)[rng.integers(0, groups, size=n)]
    return _unit(groups_ + rng.standard_normal((n, DIM), dtype=np.float32) * SPREAD)


def chunk(seed: int, number: int, groups: int, size: int = CHUNK) -> F32:
    """Faces number*CHUNK .. +size (size <= CHUNK), identity = face // FACES_PER_ID."""
    rng = np.random.default_rng([seed, number])
    centres = _centres(seed, groups, rng, CHUNK // FACES_PER_ID)
    faces = np.repeat(centres, FACES_PER_ID, axis=0)
    faces += rng.standard_normal(faces.shape, dtype=np.float32) * NOISE
    return _unit(faces)[:size]


def chunks(seed: int, n: int) -> Iterator[tuple[int, F32]]:
    """(first face id, vectors) for faces 0..n-1."""
    for number, start in enumerate(range(0, n, CHUNK)):
        yield start, chunk(seed, number, n_groups(n), min(CHUNK, n - start))


def queries(seed: int, n_gallery: int, n: int) -> F32:
    """New photos of people already in the gallery (each has FACES_PER_ID faces there)."""
    rng = np.random.default_rng([seed, 10**9])
    faces = rng.integers(0, n_gallery, size=n)
    out = np.empty((n, DIM), dtype=np.float32)
    for i, face in enumerate(faces):
        number = int(face) // CHUNK
        local = (int(face) % CHUNK) // FACES_PER_ID
        crng = np.random.default_rng([seed, number])
        centre = _centres(seed, n_groups(n_gallery), crng, CHUNK // FACES_PER_ID)[local]
        out[i] = centre + rng.standard_normal(DIM, dtype=np.float32) * NOISE
    return _unit(out)


def gallery_file(seed: int, n: int, directory: Path) -> npt.NDArray[np.float32]:
    """The gallery as a float32 memmap on disk (written once, reused across runs)."""
    path = directory / f"gallery-{seed}-{n}-g{n_groups(n)}.f32"
    if not path.exists() or path.stat().st_size != n * DIM * 4:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            for _, vecs in chunks(seed, n):
                fh.write(vecs.tobytes())
        tmp.replace(path)
    return np.memmap(path, dtype=np.float32, mode="r", shape=(n, DIM))


def exact_top(gallery: F32, q: F32, k: int, block: int = 500_000) -> npt.NDArray[np.int64]:
    """Exact top-k face ids per query (ground truth), scanning the gallery in blocks."""
    best_ids = np.empty((len(q), 0), dtype=np.int64)
    best_sims = np.empty((len(q), 0), dtype=np.float32)
    for start in range(0, len(gallery), block):
        sims = q @ np.asarray(gallery[start : start + block]).T
        kk = min(k, sims.shape[1])
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        best_ids = np.concatenate([best_ids, part + start], axis=1)
        best_sims = np.concatenate([best_sims, np.take_along_axis(sims, part, axis=1)], axis=1)
        keep = np.argsort(-best_sims, axis=1, kind="stable")[:, :k]
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
        best_sims = np.take_along_axis(best_sims, keep, axis=1)
    return best_ids


def recall(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64], k: int) -> float:
    hits = sum(
        len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True)
    )
    return hits / (len(truth) * k)
