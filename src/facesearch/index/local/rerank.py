"""ExactRerankIndex: approximate candidates, exact similarities.

The approximate index holds quantised vectors, so its own scores are estimates. This
wrapper asks it for k + ``margin`` candidates and scores them again against the full-precision
embeddings of the catalog, so every similarity a user sees is the exact cosine. A filter
that leaves few faces is answered exactly from the catalog instead: a scan of a few
thousand vectors is cheaper and cannot miss anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from facesearch.index.local.flat import top_k
from facesearch.index.ports import Ids, IndexState, Vectors

# (face ids) -> (the ids that exist, their float32 embeddings in that order)
Lookup = Callable[[Sequence[int]], tuple[Ids, Vectors]]


class ExactRerankIndex:
    """A VectorIndex that re-scores an approximate index's candidates exactly."""

    def __init__(
        self, inner: Any, lookup: Lookup, *, margin: int = 10, exact_filter_max: int = 20_000
    ) -> None:
        self.inner = inner
        self.lookup = lookup
        self.margin = margin
        self.exact_filter_max = exact_filter_max

    @property
    def kind(self) -> str:
        return str(self.inner.kind)

    def search(
        self, query: Vectors, k: int, allowed_ids: Ids | None = None
    ) -> tuple[Ids, npt.NDArray[np.float32]]:
        query = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        if allowed_ids is not None and len(allowed_ids) <= self.exact_filter_max:
            ids, vecs = self.lookup(np.asarray(allowed_ids).tolist())
            if len(ids) == 0:
                return top_k(np.empty((len(query), 0), dtype=np.float32), ids, k)
            return top_k(query @ vecs.T, ids, k)
        # A few beyond k: the 8-bit residual codes misorder only near-ties at the k-th
        # place (at 10M, k + 10 kept the recall of 2k; every candidate costs a catalog read).
        cand, _ = self.inner.search(query, k + self.margin, allowed_ids)
        ids, vecs = self.lookup(np.unique(cand[cand >= 0]).tolist())
        row_of = {int(i): n for n, i in enumerate(ids)}
        out_ids = np.full((len(query), k), -1, dtype=np.int64)
        out_sims = np.full((len(query), k), -np.inf, dtype=np.float32)
        for r, row in enumerate(cand):
            rows = [row_of[int(i)] for i in row if int(i) in row_of]
            if rows:
                got_ids, got_sims = top_k(query[r : r + 1] @ vecs[rows].T, ids[rows], k)
                out_ids[r], out_sims[r] = got_ids[0], got_sims[0]
        return out_ids, out_sims

    def add(self, ids: Ids, vectors: Vectors) -> None:
        self.inner.add(ids, vectors)

    def remove(self, ids: Iterable[int]) -> int:
        return int(self.inner.remove(ids))

    def ids(self) -> Ids:
        out: Ids = self.inner.ids()
        return out

    def state(self) -> IndexState:
        out: IndexState = self.inner.state()
        return out

    def reset(self, model_key: str | None) -> None:
        self.inner.reset(model_key)

    def compact(self) -> None:
        self.inner.compact()

    def close(self) -> None:
        self.inner.close()
