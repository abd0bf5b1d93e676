"""MemoryIndex: exact search held only in memory, rebuilt from the catalog on every open.

Used when templates are encrypted at rest: index files would be a plaintext copy of the
templates, so there are none.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from facesearch.errors import InvalidInput
from facesearch.index.local.flat import top_k
from facesearch.index.ports import Ids, IndexState, Vectors, key_dimension


class MemoryIndex:
    kind = "exact-memory"

    def __init__(self, dim: int = 0) -> None:
        self.dim = dim
        self.model_key: str | None = None
        self._ids: Ids = np.empty(0, dtype=np.int64)
        self._vectors: Vectors = np.empty((0, dim), dtype=np.float32)

    def add(self, ids: Ids, vectors: Vectors) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(self._ids) == 0 and vectors.ndim == 2 and vectors.shape[1] != self.dim:
            self.dim = vectors.shape[1]  # empty: the dimension of the first vectors
            self._vectors = np.empty((0, self.dim), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(ids) != len(vectors):
            raise InvalidInput(f"expected {len(ids)} vectors of dimension {self.dim}")
        self._ids = np.concatenate([self._ids, np.asarray(ids, dtype=np.int64)])
        self._vectors = np.concatenate([self._vectors, vectors])

    def remove(self, ids: Iterable[int]) -> int:
        drop = np.isin(self._ids, np.fromiter(ids, dtype=np.int64))
        self._ids, self._vectors = self._ids[~drop], self._vectors[~drop]
        return int(drop.sum())

    def search(
        self, query: Vectors, k: int, allowed_ids: Ids | None = None
    ) -> tuple[Ids, npt.NDArray[np.float32]]:
        ids, vectors = self._ids, self._vectors
        if len(ids) == 0:
            return top_k(np.empty((len(np.atleast_2d(query)), 0), np.float32), ids, k)
        if allowed_ids is not None:
            mask = np.isin(ids, allowed_ids)
            ids, vectors = ids[mask], vectors[mask]
        return top_k(np.atleast_2d(query).astype(np.float32) @ vectors.T, ids, k)

    def ids(self) -> Ids:
        return self._ids

    def state(self) -> IndexState:
        return IndexState(self.kind, len(self._ids), int(self._ids.sum()), self.model_key)

    def reset(self, model_key: str | None) -> None:
        self.model_key = model_key
        self.dim = key_dimension(model_key) or self.dim
        self._ids = np.empty(0, dtype=np.int64)
        self._vectors = np.empty((0, self.dim), dtype=np.float32)

    def compact(self) -> None:
        """Nothing to rewrite: removed rows are already gone from memory."""

    def close(self) -> None:
        pass
