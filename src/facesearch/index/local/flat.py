"""FlatFileIndex: exact search over vectors kept in plain files in the home directory.

Layout (``<dir>/``): ``state.json`` names the current generation and how many rows of it
are acknowledged; ``vectors.<gen>.f32`` and ``ids.<gen>.i64`` hold the rows. Adding
appends rows, fsyncs, then rewrites ``state.json`` atomically, so a crash leaves at most
an unacknowledged tail that the next open cuts off. Removing writes a new generation
without the removed rows (the old files are deleted), so no copy of a removed vector
stays in the index files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facesearch.errors import BackendUnavailable, InvalidInput
from facesearch.index.ports import Ids, IndexState, Vectors, key_dimension

STATE = "state.json"


def write_atomic(path: Path, data: bytes) -> None:
    """Replace a file so that readers see the old or the new bytes, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def delete_others(directory: Path, keep: set[str]) -> None:
    """Delete every file in ``directory`` not named in ``keep``: an older generation's
    files, or a temporary one a crash left behind."""
    for path in directory.iterdir():
        if path.name not in keep:
            path.unlink(missing_ok=True)


def top_k(sims: npt.NDArray[np.float32], ids: Ids, k: int) -> tuple[Ids, npt.NDArray[np.float32]]:
    """Best-first top-k of each row of a (queries x rows) similarity matrix, -1 padded."""
    nq, n = sims.shape
    out_ids = np.full((nq, k), -1, dtype=np.int64)
    out_sims = np.full((nq, k), -np.inf, dtype=np.float32)
    if n == 0 or k == 0:
        return out_ids, out_sims
    kk = min(k, n)
    part = (
        np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < n else np.tile(np.arange(n), (nq, 1))
    )
    part_sims = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-part_sims, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    out_ids[:, :kk] = ids[best]
    out_sims[:, :kk] = np.take_along_axis(part_sims, order, axis=1)
    return out_ids, out_sims


class FlatFileIndex:
    """Exact cosine search; every query reads every vector (fast enough to ~1M faces)."""

    kind = "exact"

    def __init__(self, directory: Path, dim: int = 0) -> None:
        self.dir = directory
        self.dim = dim
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._load()
        except (OSError, ValueError, KeyError) as exc:  # unreadable state: rebuild
            raise BackendUnavailable(f"cannot open index at {self.dir}: {exc}") from exc

    # -- files -------------------------------------------------------------------------
    def _paths(self, gen: int) -> tuple[Path, Path]:
        return self.dir / f"vectors.{gen}.f32", self.dir / f"ids.{gen}.i64"

    def _load(self) -> None:
        state_path = self.dir / STATE
        if state_path.exists():
            state = json.loads(state_path.read_text())
            self.gen = int(state["generation"])
            count = int(state["count"])
            self.dim = int(state.get("dim", self.dim))
            self.model_key: str | None = state.get("model_key")
        else:
            self.gen, count, self.model_key = 0, 0, None
        vec_path, ids_path = self._paths(self.gen)
        for path, width in ((vec_path, 4 * self.dim), (ids_path, 8)):
            if not path.exists():
                path.touch()
            # Cut off rows appended by a writer that died before acknowledging them.
            if path.stat().st_size > count * width:
                os.truncate(path, count * width)
            elif path.stat().st_size < count * width:
                count = path.stat().st_size // width  # a lost tail: the catalog check repairs it
        self._ids: Ids = np.fromfile(ids_path, dtype=np.int64)[:count]
        raw = np.fromfile(vec_path, dtype=np.float32)
        # No dimension known yet (a new index): it holds nothing until its first vectors.
        self.vectors: Vectors = raw.reshape(-1, self.dim)[:count] if self.dim else raw.reshape(0, 0)
        delete_others(self.dir, {p.name for p in self._paths(self.gen)} | {STATE})

    def _write_state(self) -> None:
        state = {
            "generation": self.gen,
            "count": len(self._ids),
            "dim": self.dim,
            "model_key": self.model_key,
            "id_sum": int(self._ids.sum()) if len(self._ids) else 0,
        }
        write_atomic(self.dir / STATE, json.dumps(state).encode())

    # -- VectorIndex -------------------------------------------------------------------
    def add(self, ids: Ids, vectors: Vectors) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(self._ids) == 0 and vectors.ndim == 2 and len(vectors):
            self.dim = vectors.shape[1]  # empty: the dimension of the first vectors
            self.vectors = np.empty((0, self.dim), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(ids) != len(vectors):
            raise InvalidInput(f"expected {len(ids)} vectors of dimension {self.dim}")
        if len(ids) == 0:
            return
        vec_path, ids_path = self._paths(self.gen)
        for path, arr in ((vec_path, vectors), (ids_path, ids)):
            with open(path, "ab") as fh:
                fh.write(arr.tobytes())
                fh.flush()
                os.fsync(fh.fileno())
        self._ids = np.concatenate([self._ids, ids])
        self.vectors = np.concatenate([self.vectors, vectors])
        self._write_state()

    def remove(self, ids: Iterable[int]) -> int:
        drop = np.fromiter(ids, dtype=np.int64)
        if len(drop) == 0 or len(self._ids) == 0:
            return 0
        keep = ~np.isin(self._ids, drop)
        removed = int((~keep).sum())
        if removed:
            self._rewrite(self._ids[keep], self.vectors[keep])
        return removed

    def _rewrite(self, ids: Ids, vectors: Vectors) -> None:
        old = self._paths(self.gen)
        self.gen += 1
        vec_path, ids_path = self._paths(self.gen)
        for path, arr in ((vec_path, vectors), (ids_path, ids)):
            with open(path, "wb") as fh:
                fh.write(np.ascontiguousarray(arr).tobytes())
                fh.flush()
                os.fsync(fh.fileno())
        self._ids, self.vectors = np.ascontiguousarray(ids), np.ascontiguousarray(vectors)
        self._write_state()
        for path in old:
            path.unlink(missing_ok=True)

    def search(
        self, query: Vectors, k: int, allowed_ids: Ids | None = None
    ) -> tuple[Ids, npt.NDArray[np.float32]]:
        query = np.atleast_2d(np.asarray(query, dtype=np.float32))
        ids, vectors = self._ids, self.vectors
        if len(ids) == 0:
            return top_k(np.empty((len(query), 0), np.float32), ids, k)
        # One query is a matrix-vector product: cheaper than a 1-row GEMM, whose BLAS
        # threads contend on a busy machine.
        sims = (vectors @ query[0])[None, :] if len(query) == 1 else query @ vectors.T
        if allowed_ids is None:
            return top_k(sims, ids, k)
        # Score every row and mask the others out, rather than copying the allowed rows.
        allowed = np.sort(np.asarray(allowed_ids, dtype=np.int64))
        if len(allowed) == 0 or len(ids) == 0:
            return top_k(sims[:, :0], ids[:0], k)
        at = np.minimum(np.searchsorted(allowed, ids), len(allowed) - 1)
        sims[:, allowed[at] != ids] = -np.inf
        found, scores = top_k(sims, ids, k)
        found[~np.isfinite(scores)] = -1
        return found, scores

    def ids(self) -> Ids:
        return self._ids

    def state(self) -> IndexState:
        return IndexState(
            kind=self.kind,
            count=len(self._ids),
            id_sum=int(self._ids.sum()) if len(self._ids) else 0,
            model_key=self.model_key,
        )

    def compact(self) -> None:
        """Nothing to do: ``remove`` already writes a generation without the rows."""

    def reset(self, model_key: str | None) -> None:
        self.model_key = model_key
        self.dim = key_dimension(model_key) or self.dim
        self._rewrite(np.empty(0, dtype=np.int64), np.empty((0, self.dim), dtype=np.float32))

    def close(self) -> None:
        pass
