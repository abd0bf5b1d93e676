"""The vector index port.

An index maps face ids (int64) to unit vectors and answers nearest-neighbour queries by
cosine similarity. It is never the source of truth: the catalog is, and an index can be
rebuilt from it at any time. Every adapter must answer like exact search on the same
vectors (see tests/contract).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from facesearch.domain import ModelId

Ids = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float32]


def key_dimension(model_key: str | None) -> int:
    """The vector dimension a model key names; 0 when there is no key or it names none.

    An index learns its dimension from the model key it is reset with (or, empty, from the
    first vectors added): no dimension is assumed, so any model's vectors can be held.
    """
    if not model_key:
        return 0
    try:
        return ModelId.from_key(model_key).dim
    except ValueError:
        return 0


@dataclass(frozen=True, slots=True)
class IndexState:
    """What an index holds, cheap to compare with the catalog's own count and id sum."""

    kind: str
    count: int
    id_sum: int
    model_key: str | None


@dataclass(frozen=True, slots=True)
class FaceFilter:
    """Which faces a search may return, said in the catalog's terms rather than as an array
    of every allowed face id (8 GB at a billion faces). An index that keeps these labels
    beside its vectors (Milvus) filters on them itself; the local index asks the catalog
    for the ids. A face passes when one of its image's copies is in ``sources``, one is
    in a source placed in ``jurisdictions``, and one has not expired at ``now`` (ISO
    date); None: no condition."""

    sources: tuple[str, ...] | None = None
    jurisdictions: tuple[str, ...] | None = None
    now: str | None = None


class VectorIndex(Protocol):
    """Nearest-neighbour search over face embeddings."""

    @property
    def kind(self) -> str:
        """Which index answers (exact, ann, exact-memory, ...): shown in stats."""
        ...

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


Progress = Callable[[int, int], None]  # (done, total)


class IndexLifecycle(Protocol):
    """How an index is kept in line with its catalog (the truth) over its life.

    The engine calls these and nothing else about where or how the index is kept: which
    kind answers (exact or approximate), its files, and whether other processes write it
    are the adapter's business. Methods that write (``fit``, ``rebuild``, ``compact`` and
    ``add``/``remove``) are called inside ``writing()``.
    """

    def open(self) -> dict[str, int]:
        """Open the index and repair it from the catalog; returns the repairs."""
        ...

    def sync(self) -> dict[str, int]:
        """Bring the index in line with the catalog. Returns what was repaired
        (``{"added": n, "removed": m}``), or ``{}`` when nothing was."""
        ...

    def fit(self) -> bool:
        """Switch kind (or retrain) when the collection's size asks; True if it did."""
        ...

    def rebuild(self, kind: str | None = None, progress: Progress | None = None) -> None:
        """Rebuild from the catalog's embeddings (``kind``: exact, ann, auto, or None for
        the one configured)."""
        ...

    def catch_up(self) -> bool:
        """See what other processes wrote: reload and repair when the catalog changed.
        False while another process is writing the index (try again later)."""
        ...

    def writing(self, wait: float | None, changes: bool = False) -> AbstractContextManager[None]:
        """Hold the index for writing (waiting up to ``wait`` seconds, None: as long as
        it takes; BackendUnavailable past it). ``changes``: count a write even if the
        index looks the same (a compaction)."""
        ...


class ManagedIndex(VectorIndex, IndexLifecycle, Protocol):
    """An index adapter: searches, and keeps itself in line with the catalog."""

    def search(
        self,
        query: Vectors,
        k: int,
        allowed_ids: Ids | None = None,
        where: FaceFilter | None = None,
    ) -> tuple[Ids, npt.NDArray[np.float32]]:
        """As ``VectorIndex.search``, restricted to the faces ``where`` lets through too."""
        ...

    def relabel(self, face_ids: Sequence[int]) -> None:
        """The catalog's copies of these faces changed (a copy added or removed, a
        source's jurisdictions or retention changed): an index that filters on its own
        copy of those labels rewrites them."""
        ...
