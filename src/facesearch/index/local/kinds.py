"""Which local index a folder holds, and building one of each kind.

An index folder holds one index at a time: ``flat/`` (exact, FlatFileIndex) or ``ivf/``
(approximate, FaissIvfIndex behind ExactRerankIndex). ``kind.json`` records a kind forced
by ``facesearch reindex --kind``; without it the kind follows the collection size
(``index.kind = "auto"``): exact below ``index.ann_threshold`` faces, approximate from
there on, and back to exact below half the threshold (the gap keeps a collection near the
threshold from flapping). Switching builds the new index from the catalog, then deletes
the old one's files, so no second copy of an embedding is left behind.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from facesearch.catalog.ports import Catalog
from facesearch.config import IndexSettings
from facesearch.errors import BackendUnavailable, InvalidInput
from facesearch.index.local.faiss_ivf import FaissIvfIndex
from facesearch.index.local.flat import FlatFileIndex, write_atomic
from facesearch.index.local.rerank import ExactRerankIndex
from facesearch.index.ports import Ids, VectorIndex, Vectors

KINDS = ("auto", "exact", "ann")
DIRS = {"exact": "flat", "ann": "ivf"}
RETRAIN_GROWTH = 8  # retrain the IVF cells once the collection is this many times larger

FileIndex = FlatFileIndex | ExactRerankIndex


def forced_kind(root: Path) -> str | None:
    path = root / "kind.json"
    return str(json.loads(path.read_text())["kind"]) if path.exists() else None


def force_kind(root: Path, kind: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"unknown index kind {kind!r}; known kinds: {', '.join(KINDS)}")
    root.mkdir(parents=True, exist_ok=True)
    path = root / "kind.json"
    if kind == "auto":
        path.unlink(missing_ok=True)
    else:
        write_atomic(path, json.dumps({"kind": kind}).encode())


def wanted_kind(settings: IndexSettings, root: Path, count: int, current: str | None) -> str:
    kind = forced_kind(root) or settings.kind
    if kind != "auto":
        return kind
    threshold = settings.ann_threshold
    if current == "ann" and count >= threshold // 2:
        return "ann"
    return "ann" if count >= threshold else "exact"


def current_kind(root: Path) -> str | None:
    for kind, name in DIRS.items():
        if (root / name / "state.json").exists():
            return kind
    return None


def make_index(kind: str, root: Path, settings: IndexSettings, catalog: Catalog) -> FileIndex:
    """Open (or create empty) the index of that kind, without filling it."""
    directory = root / DIRS[kind]
    if kind == "exact":
        return FlatFileIndex(directory)
    ivf = FaissIvfIndex(
        directory,
        expected=catalog.face_state()[0],
        nprobe=settings.nprobe,
        compact_fraction=settings.compact_fraction,
    )
    return ExactRerankIndex(ivf, catalog.embeddings_found, margin=settings.rerank_margin)


def build_index(
    kind: str,
    root: Path,
    settings: IndexSettings,
    catalog: Catalog,
    progress: Callable[[int, int], None] | None = None,
) -> FileIndex:
    """A fresh index of that kind filled from the catalog; other kinds' files deleted."""
    total = catalog.face_state()[0]
    shutil.rmtree(root / DIRS[kind], ignore_errors=True)
    index = make_index(kind, root, settings, catalog)
    index.reset(catalog.model_key())
    if isinstance(index, ExactRerankIndex) and total > 0:
        ivf = index.inner
        ivf.train(catalog.sample_embeddings(ivf.train_size), planned=total)
        fill(ivf.add_bulk, catalog, progress)
        ivf.compact()  # one snapshot holding everything
    else:
        fill(index.add, catalog, progress)
    for other, name in DIRS.items():
        if other != kind:
            shutil.rmtree(root / name, ignore_errors=True)
    return index


def fill(
    add: Callable[[Ids, Vectors], None],
    catalog: Catalog,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Pass every embedding of the catalog to ``add`` (an empty index's), 100,000 at a
    time, reporting (done, total) to ``progress``."""
    total, done = catalog.face_state()[0], 0
    for ids, vecs in catalog.iter_embeddings(100_000):
        add(ids, vecs)
        done += len(ids)
        if progress:
            progress(done, total)


def open_index(root: Path, settings: IndexSettings, catalog: Catalog) -> FileIndex:
    """The folder's index, switched or retrained first when the collection asks for it."""
    current = current_kind(root)
    count = catalog.face_state()[0]
    kind = wanted_kind(settings, root, count, current)
    if current != kind:
        if current is None and count == 0:
            return make_index(kind, root, settings, catalog)
        return build_index(kind, root, settings, catalog)
    try:
        index = make_index(kind, root, settings, catalog)
    except BackendUnavailable:  # damaged files: the index is derived, rebuild it
        return build_index(kind, root, settings, catalog)
    if isinstance(index, ExactRerankIndex) and needs_retrain(index.inner, count):
        index.close()
        return build_index(kind, root, settings, catalog)
    return index


def needs_retrain(ivf: FaissIvfIndex, count: int) -> bool:
    return ivf.trained and count > RETRAIN_GROWTH * max(ivf.trained_for, 1)


def outgrown(index: VectorIndex, count: int) -> bool:
    """True when an approximate index's cells were trained for a much smaller collection."""
    return isinstance(index, ExactRerankIndex) and needs_retrain(index.inner, count)
