"""FaissIvfIndex: approximate search with faiss IVF and 8-bit scalar quantisation.

Vectors are assigned to one of ``nlist`` k-means cells and stored as 8-bit codes (128
bytes a face, a quarter of float32); a query scans the ``nprobe`` nearest cells. faiss
IVF removes vectors for real (``remove_ids`` drops their codes from the lists), which is
why it was chosen over HNSW libraries that can only mark deletions (docs/index.md).

Layout (``<dir>/``), every file but ``state.json`` named by generation:

- ``ivf.<gen>.faiss``  snapshot of the trained index (faiss's own format);
- ``delta.<gen>.f32`` / ``delta.<gen>.i64``  rows added since the snapshot, appended and
  fsynced before ``state.json`` acknowledges them (a crash leaves at most an
  unacknowledged tail, cut off on open);
- ``removed.<gen>.i64``  ids removed since the snapshot (tombstones).

Removing takes a face out of memory, and so out of results, at once; its bytes stay in
the snapshot or the delta until :meth:`compact` writes a new generation without them and
deletes the old files. Compaction runs by itself once tombstones pass
``compact_fraction`` of the index, and whenever the delta is folded into a snapshot.
Until ``train_size`` rows have arrived the index is untrained and searches its delta
exactly.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from facesearch.errors import BackendUnavailable, InvalidInput
from facesearch.index.local.flat import delete_others, fsync_dir, top_k, write_atomic
from facesearch.index.ports import Ids, IndexState, Vectors, key_dimension

STATE = "state.json"
FILES = ("ivf.faiss", "delta.f32", "delta.i64", "removed.i64")  # one set per generation
# k-means needs a few points per cell, not faiss's 39: cells only have to split the
# gallery evenly, and 16 a cell trains 65,536 cells in about 12 min on 2 cores.
TRAIN_PER_CELL = 16
# About 150 faces a cell at 10M: recall@10 0.99 needs ~1% of the gallery scanned with
# 4,096 cells (nprobe 256+) but 0.1% with 65,536 (docs/benchmarks.md).
MAX_NLIST = 65536
HNSW_QUANTIZER_FROM = 1024  # from this many cells, find a vector's cells with HNSW
ADD_EF_SEARCH = 32  # HNSW breadth when assigning a new vector to its cell
SEARCH_EF_MIN = 128  # HNSW breadth when finding a query's nprobe cells (at least nprobe)
KMEANS_ITERATIONS = 10


def default_nlist(expected: int) -> int:
    """About 16*sqrt(n) cells, a power of two from 16 to MAX_NLIST, trainable on n vectors."""
    target = 2 ** round(math.log2(16 * math.sqrt(max(expected, 1))))
    trainable = 2 ** math.floor(math.log2(max(expected // TRAIN_PER_CELL, 1)))
    return int(min(MAX_NLIST, max(16, min(target, trainable))))


def default_nprobe(nlist: int) -> int:
    """Cells scanned per query: 1/512 of them, 32 to 128 (measured, docs/benchmarks.md)."""
    return min(nlist, max(32, min(128, nlist // 512)))


def train_cells(sample: Vectors, nlist: int) -> Vectors:
    """Spherical k-means centres of ``sample``. With many cells each point finds its
    nearest centre through HNSW instead of comparing with all of them, which makes
    training 65,536 cells a matter of minutes rather than hours on 2 cores."""
    clustering: Any = faiss.Clustering(sample.shape[1], nlist)
    clustering.niter = KMEANS_ITERATIONS
    clustering.spherical = True
    clustering.min_points_per_centroid = 1  # TRAIN_PER_CELL is chosen on purpose
    clustering.max_points_per_centroid = 1 << 30  # the caller already sampled
    assign: Any
    if nlist >= HNSW_QUANTIZER_FROM:
        assign = _centre_graph(sample.shape[1], faiss.METRIC_L2)
        assign.hnsw.efSearch = ADD_EF_SEARCH
    else:
        assign = faiss.IndexFlatL2(sample.shape[1])
    clustering.train(sample, assign)
    centres: Vectors = faiss.vector_to_array(clustering.centroids).reshape(nlist, -1)
    return centres


def _centre_graph(dim: int, metric: int) -> Any:
    """An HNSW graph to hold cell centres (for k-means assignment, or as the quantizer)."""
    graph: Any = faiss.IndexHNSWFlat(dim, 32, metric)
    graph.hnsw.efConstruction = 40
    return graph


def _fsync_append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class FaissIvfIndex:
    """IVF + SQ8 cosine search (inner product on unit vectors), persisted by generation."""

    kind = "ann"

    def __init__(
        self,
        directory: Path,
        dim: int = 0,
        *,
        expected: int = 0,
        nprobe: int = 0,
        compact_fraction: float = 0.05,
        snapshot_fraction: float = 0.1,
    ) -> None:
        self.dir = directory
        self.dim = dim
        self.nprobe_setting = nprobe
        self.compact_fraction = compact_fraction
        self.snapshot_fraction = snapshot_fraction
        self.expected = expected
        self._hnsw_quantizer = False
        self._centres: Vectors | None = None  # cell centres, for filtered searches
        self._last_bitmap: tuple[Ids, int, npt.NDArray[np.uint8], int] | None = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._load()
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            raise BackendUnavailable(f"cannot open index at {self.dir}: {exc}") from exc

    # -- files -------------------------------------------------------------------------
    def _path(self, name: str, gen: int | None = None) -> Path:
        stem, ext = name.split(".")
        return self.dir / f"{stem}.{self.gen if gen is None else gen}.{ext}"

    def _load(self) -> None:
        state_path = self.dir / STATE
        state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
        self.gen = int(state.get("generation", 0))
        self.model_key: str | None = state.get("model_key")
        self.dim = int(state.get("dim", self.dim))
        self.nlist = int(state.get("nlist", 0)) or default_nlist(self.expected)
        self.trained_for = int(state.get("trained_for", 0))
        n_delta, n_removed = int(state.get("delta", 0)), int(state.get("removed", 0))
        snapshot = self._path("ivf.faiss")
        self.ivf: Any = faiss.read_index(str(snapshot)) if state.get("snapshot") else None
        delta_ids = self._read_acknowledged("delta.i64", np.int64, 1, n_delta)
        delta_vecs = self._read_acknowledged("delta.f32", np.float32, self.dim, n_delta)
        n = min(len(delta_ids), len(delta_vecs))  # a lost tail: the catalog check repairs it
        removed = self._read_acknowledged("removed.i64", np.int64, 1, n_removed)
        delete_others(self.dir, {STATE} | {self._path(n).name for n in FILES})

        self._ids: Ids = np.empty(0, dtype=np.int64)  # sorted, every id held
        self._delta_ids: Ids = delta_ids[:n].reshape(-1)
        self._delta_vecs: Vectors = delta_vecs[:n]
        self._delta_rows = n  # rows in the delta files, removed ones included
        self._n_removed = len(removed)
        if self.ivf is not None:
            self._ids = np.sort(self._ivf_ids())
        if removed.size and self.ivf is not None:
            self.ivf.remove_ids(faiss.IDSelectorBatch(removed.reshape(-1)))
        keep = ~np.isin(self._delta_ids, removed)
        self._delta_ids, self._delta_vecs = self._delta_ids[keep], self._delta_vecs[keep]
        if self.ivf is not None and len(self._delta_ids):
            self.ivf.add_with_ids(self._delta_vecs, self._delta_ids)
        self._ids = np.union1d(np.setdiff1d(self._ids, removed), self._delta_ids)
        self._set_nprobe()

    def _read_acknowledged(self, name: str, dtype: Any, width: int, count: int) -> Any:
        path = self._path(name)
        item = np.dtype(dtype).itemsize * width
        if not path.exists():
            path.touch()
        if path.stat().st_size > count * item:
            os.truncate(path, count * item)
        if width == 0:  # no dimension known yet (a new index): nothing held
            return np.empty((0, 0), dtype=dtype)
        return np.fromfile(path, dtype=dtype).reshape(-1, width)[:count]

    def _ivf_ids(self) -> Ids:
        lists: Any = faiss.extract_index_ivf(self.ivf).invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(lists.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)

    def _write_state(self) -> None:
        state = {
            "generation": self.gen,
            "model_key": self.model_key,
            "dim": self.dim,
            "nlist": self.nlist,
            "trained_for": self.trained_for,
            "snapshot": self.ivf is not None,
            "delta": self._delta_rows,
            "removed": self._n_removed,
            "count": len(self._ids),
            "id_sum": int(self._ids.sum()),
        }
        write_atomic(self.dir / STATE, json.dumps(state).encode())

    def _set_nprobe(self) -> None:
        self._centres = None
        if self.ivf is not None:
            self.nprobe = self.nprobe_setting or default_nprobe(self.nlist)
            ivf = faiss.extract_index_ivf(self.ivf)
            ivf.nprobe = self.nprobe
            quantizer: Any = faiss.downcast_index(ivf.quantizer)
            self._hnsw_quantizer = isinstance(quantizer, faiss.IndexHNSWFlat)
            if self._hnsw_quantizer:
                # Adding needs only each vector's nearest cell; searches ask for more.
                quantizer.hnsw.efSearch = ADD_EF_SEARCH

    # -- training and snapshots ----------------------------------------------------------
    @property
    def train_size(self) -> int:
        return self.nlist * TRAIN_PER_CELL

    @property
    def trained(self) -> bool:
        return self.ivf is not None

    def train(self, sample: Vectors, planned: int = 0) -> None:
        """Train the cells on a sample (a random sample of the ``planned`` faces)."""
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        if not self.dim and sample.ndim == 2:
            # No model key (vectors added without one): the sample says the dimension.
            self.dim = sample.shape[1]
        self.nlist = min(self.nlist, max(1, len(sample) // TRAIN_PER_CELL))
        quantizer: Any
        if self.nlist >= HNSW_QUANTIZER_FROM:
            quantizer = _centre_graph(self.dim, faiss.METRIC_INNER_PRODUCT)
        else:
            quantizer = faiss.IndexFlatIP(self.dim)
        quantizer.add(train_cells(sample, self.nlist))
        ivf: Any = faiss.IndexIVFScalarQuantizer(
            quantizer,
            self.dim,
            self.nlist,
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )
        ivf.train(sample)  # the cells are set: this trains the 8-bit codes only
        self.ivf = ivf
        self.trained_for = max(len(self._ids), len(sample), planned)
        if len(self._delta_ids):
            self.ivf.add_with_ids(self._delta_vecs, self._delta_ids)
        self._set_nprobe()
        self.compact()

    def compact(self) -> None:
        """Write a new generation without removed vectors; delete the old files."""
        old = [self._path(n) for n in FILES]
        self.gen += 1
        if self.ivf is not None:
            tmp = self._path("ivf.faiss").with_suffix(".tmp")
            faiss.write_index(self.ivf, str(tmp))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self._path("ivf.faiss"))
            self._delta_ids = np.empty(0, dtype=np.int64)
            self._delta_vecs = np.empty((0, self.dim), dtype=np.float32)
        for name, arr in (("delta.f32", self._delta_vecs), ("delta.i64", self._delta_ids)):
            with open(self._path(name), "wb") as fh:
                fh.write(np.ascontiguousarray(arr).tobytes())
                fh.flush()
                os.fsync(fh.fileno())
        self._path("removed.i64").touch()
        self._delta_rows = len(self._delta_ids)
        self._n_removed = 0
        self._write_state()
        for path in old:
            path.unlink(missing_ok=True)
        fsync_dir(self.dir)

    # -- VectorIndex -------------------------------------------------------------------
    def add(self, ids: Ids, vectors: Vectors) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.ivf is None and self._delta_rows == 0 and vectors.ndim == 2 and len(vectors):
            self.dim = vectors.shape[1]  # empty: the dimension of the first vectors
            self._delta_vecs = np.empty((0, self.dim), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(ids) != len(vectors):
            raise InvalidInput(f"expected {len(ids)} vectors of dimension {self.dim}")
        if len(ids) == 0:
            return
        _fsync_append(self._path("delta.f32"), vectors.tobytes())
        _fsync_append(self._path("delta.i64"), ids.tobytes())
        self._delta_rows += len(ids)
        self._delta_ids = np.concatenate([self._delta_ids, ids])
        self._delta_vecs = np.concatenate([self._delta_vecs, vectors])
        if self.ivf is not None:
            self.ivf.add_with_ids(vectors, ids)
        self._remember(ids)
        self._write_state()
        if self.ivf is None and len(self._delta_ids) >= self.train_size:
            self.train(self._delta_vecs)
        elif len(self._delta_ids) > self.snapshot_fraction * max(len(self._ids), 100_000):
            self.compact()

    def add_bulk(self, ids: Ids, vectors: Vectors) -> None:
        """Add to a trained index in memory only; durable at the next :meth:`compact`.

        For builds from the catalog: no delta is written, so a 10M build writes one
        snapshot instead of the vectors twice. A crash before the compaction loses the
        rows, which the catalog check on open puts back.
        """
        if self.ivf is None:
            raise InvalidInput("train the index before a bulk add")
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        self.ivf.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self._remember(ids)

    def _remember(self, ids: Ids) -> None:
        # Catalog ids only grow, so the sorted id list is usually extended, not merged.
        if len(self._ids) == 0 or ids.min() > self._ids[-1]:
            self._ids = np.concatenate([self._ids, np.sort(ids)])
        else:
            self._ids = np.union1d(self._ids, ids)

    def remove(self, ids: Iterable[int]) -> int:
        drop = np.unique(np.fromiter(ids, dtype=np.int64))
        pos = np.searchsorted(self._ids, drop)
        present = drop[
            (pos < len(self._ids)) & (self._ids[np.minimum(pos, len(self._ids) - 1)] == drop)
        ]
        if len(present) == 0:
            return 0
        _fsync_append(self._path("removed.i64"), present.tobytes())
        if self.ivf is not None:
            self.ivf.remove_ids(faiss.IDSelectorBatch(present))
        keep = ~np.isin(self._delta_ids, present)
        self._delta_ids, self._delta_vecs = self._delta_ids[keep], self._delta_vecs[keep]
        self._ids = np.setdiff1d(self._ids, present, assume_unique=True)
        self._n_removed += len(present)
        self._write_state()
        if self._n_removed > self.compact_fraction * max(len(self._ids), 1):
            self.compact()
        return len(present)

    def search(
        self, query: Vectors, k: int, allowed_ids: Ids | None = None
    ) -> tuple[Ids, npt.NDArray[np.float32]]:
        query = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        if self.ivf is None:  # untrained: the delta is all there is, search it exactly
            ids, vecs = self._delta_ids, self._delta_vecs
            if allowed_ids is not None:
                mask = np.isin(ids, allowed_ids)
                ids, vecs = ids[mask], vecs[mask]
            if len(ids) == 0:
                return top_k(np.empty((len(query), 0), np.float32), ids, k)
            return top_k(query @ vecs.T, ids, k)
        ivf: Any = faiss.extract_index_ivf(self.ivf)
        # One query: both cores scan its cells (faiss splits the probes between threads);
        # a batch: each core takes whole queries.
        ivf.parallel_mode = 1 if len(query) == 1 else 0
        if allowed_ids is None or not len(self._ids):
            make: Any = faiss.SearchParametersIVF
            params = make(nprobe=self.nprobe)
            if self._hnsw_quantizer:  # the cell search must return all nprobe cells
                make_hnsw: Any = faiss.SearchParametersHNSW  # type: ignore[attr-defined]
                params.quantizer_params = make_hnsw(efSearch=max(SEARCH_EF_MIN, self.nprobe))
            sims, ids = self.ivf.search(query, k, params=params)
        else:
            sims, ids = self._search_filtered(ivf, query, k, allowed_ids)
        sims = np.where(ids >= 0, sims, -np.inf).astype(np.float32)
        return ids.astype(np.int64), sims

    def _search_filtered(
        self, ivf: Any, query: Vectors, k: int, allowed_ids: Ids
    ) -> tuple[npt.NDArray[np.float32], Ids]:
        """Only ``allowed_ids``, checked inside the scan against a bitmap of the id range.

        A filter keeping a share s of the faces leaves about s of every cell, so the scan
        covers nprobe/s cells to see as many allowed faces as an unfiltered search (1% of
        10M faces: recall@10 0.99 in ~25 ms, docs/benchmarks.md). That many cells are
        found by comparing the query with every cell centre: one matrix product, cheaper
        than a graph search that deep.
        """
        bitmap, n_allowed = self._bitmap(allowed_ids)
        share = max(n_allowed / len(self._ids), 1e-9)
        nprobe = max(1, min(self.nlist, math.ceil(self.nprobe / share)))
        if self._centres is None:
            self._centres = faiss.downcast_index(ivf.quantizer).reconstruct_n(0, self.nlist)
        coarse = query @ self._centres.T
        cells = np.argpartition(-coarse, nprobe - 1, axis=1)[:, :nprobe].astype(np.int64)
        cell_sims = np.ascontiguousarray(np.take_along_axis(coarse, cells, axis=1))
        make_params: Any = faiss.SearchParametersIVF
        params = make_params(nprobe=nprobe)
        params.sel = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        sims = np.empty((len(query), k), dtype=np.float32)
        ids = np.empty((len(query), k), dtype=np.int64)
        sw = faiss.swig_ptr
        ivf.search_preassigned_c(
            len(query), sw(query), k, sw(cells), sw(cell_sims), sw(sims),
            sw(ids), False, params,
        )  # fmt: skip
        return sims, ids  # bitmap, which params.sel points into, lived until here

    def _bitmap(self, allowed_ids: Ids) -> tuple[npt.NDArray[np.uint8], int]:
        """A bitmap over the id range with the allowed ids set, and how many there are.

        Building it touches every id up to the largest (~5 ms at 10M), so the last one is
        kept: the catalog hands the same read-only array to every search of the same
        sources until it changes.
        """
        last = self._last_bitmap
        if last is not None and last[0] is allowed_ids and last[1] == len(self._ids):
            return last[2], last[3]
        allowed = np.asarray(allowed_ids, dtype=np.int64)
        allowed = allowed[(allowed >= 0) & (allowed <= self._ids[-1])]
        bits = np.zeros(int(self._ids[-1]) + 1, dtype=bool)
        bits[allowed] = True
        bitmap = np.packbits(bits, bitorder="little")
        if isinstance(allowed_ids, np.ndarray) and not allowed_ids.flags.writeable:
            self._last_bitmap = (allowed_ids, len(self._ids), bitmap, len(allowed))
        return bitmap, len(allowed)

    def ids(self) -> Ids:
        return self._ids

    def state(self) -> IndexState:
        return IndexState(
            kind=self.kind,
            count=len(self._ids),
            id_sum=int(self._ids.sum()),
            model_key=self.model_key,
        )

    def reset(self, model_key: str | None) -> None:
        self.model_key = model_key
        self.dim = key_dimension(model_key) or self.dim
        self.ivf = None
        self.trained_for = 0
        self.nlist = default_nlist(self.expected)
        self._ids = np.empty(0, dtype=np.int64)
        self._delta_ids = np.empty(0, dtype=np.int64)
        self._delta_vecs = np.empty((0, self.dim), dtype=np.float32)
        self.compact()

    def close(self) -> None:
        pass

    def footprint(self) -> dict[str, Any]:
        """What the index holds, for stats: cells, probes, pending delta and tombstones."""
        return {
            "trained": self.trained,
            "nlist": self.nlist,
            "nprobe": getattr(self, "nprobe", 0),
            "delta": len(self._delta_ids),
            "removed_pending": self._n_removed,
            "bytes_on_disk": sum(p.stat().st_size for p in self.dir.iterdir()),
        }
