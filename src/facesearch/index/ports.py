"""The vector index port.

An index maps face ids (int64) to unit vectors and answers nearest-neighbour queries by
cosine similarity. It is never the source of truth: the catalog is, and an index can be
rebuilt from it at any time. Every adapter must answer like exact search on the same
vectors (see tests/contract).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Ids = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class IndexState:
    """What an index holds, cheap to compare with the catalog's own count and id sum."""

    kind: str
    count: int
    id_sum: int
    model_key: str | None


class VectorIndex(Protocol):
    """Nearest-neighbour search over face embeddings."""

    kind: str

    def add(self, ids: Ids, vectors: Vectors) -> None:
        """Add vectors; ids must be new. Durable once the call returns."""
        ...

    def remove(self, ids: Iterable[int]) -> int:
        """Remove ids (unknown ids are ignored); returns how many were removed."""
        ...

    def search(
        self, query: Vectors, k: int, allowed_ids: Ids | None = None
    ) -> tuple[Ids, npt.NDArray[np.float32]]:
        """Top-k ids and similarities per query row, best first; -1 pads short rows.

        ``allowed_ids`` (sorted) restricts the answer to those ids without losing recall.
        """
        ...

    def ids(self) -> Ids:
        """Every id held (for the repair after a crash)."""
        ...

    def state(self) -> IndexState:
        """Count, id sum and model key, for the consistency check against the catalog."""
        ...

    def compact(self) -> None:
        """Rewrite the index files so that no removed vector is left in them."""
        ...

    def reset(self, model_key: str | None) -> None:
        """Drop everything (before a rebuild)."""
        ...

    def close(self) -> None:
        """Release files."""
        ...
