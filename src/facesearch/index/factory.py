"""Which index a home uses, and switching between them.

A home holds one index at a time under ``<home>/index/``: ``flat/`` (exact, FlatFileIndex)
or ``ivf/`` (approximate, FaissIvfIndex behind ExactRerankIndex). ``kind.json`` records a
kind forced by ``facesearch reindex --kind``; without it the kind follows the collection
size (``index.kind = "auto"``): exact below ``index.ann_threshold`` faces, approximate
from there on, and back to exact below half the threshold (the gap keeps a collection
near the threshold from flapping). Switching builds the new index from the catalog, then
deletes the old one's files, so no second copy of an embedding is left behind.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facesearch.catalog.sqlite import SqliteCatalog
from facesearch.config import Settings
from facesearch.errors import BackendUnavailable, InvalidInput
from facesearch.index.faiss_ivf import FaissIvfIndex
from facesearch.index.flat import FlatFileIndex, write_atomic
from facesearch.index.ports import Ids, VectorIndex, Vectors
from facesearch.index.rerank import ExactRerankIndex

KINDS = ("auto", "exact", "ann")
DIRS = {"exact": "flat", "ann": "ivf"}
RETRAIN_GROWTH = 8  # retrain the IVF cells once the collection is this many times larger


def forced_kind(home: Path) -> str | None:
    path = home / "index" / "kind.json"
    return str(json.loads(path.read_text())["kind"]) if path.exists() else None


def force_kind(home: Path, kind: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"unknown index kind {kind!r}; known kinds: {', '.join(KINDS)}")
    (home / "index").mkdir(parents=True, exist_ok=True)
    path = home / "index" / "kind.json"
    if kind == "auto":
        path.unlink(missing_ok=True)
    else:
        write_atomic(path, json.dumps({"kind": kind}).encode())


def wanted_kind(settings: Settings, home: Path, count: int, current: str | None) -> str:
    kind = forced_kind(home) or settings.index.kind
    if kind != "auto":
        return kind
    threshold = settings.index.ann_threshold
    if current == "ann" and count >= threshold // 2:
        return "ann"
    return "ann" if count >= threshold else "exact"


def current_kind(home: Path) -> str | None:
    for kind, name in DIRS.items():
        if (home / "index" / name / "state.json").exists():
            return kind
    return None


def make_index(kind: str, home: Path, settings: Settings, catalog: SqliteCatalog) -> Any:
    """Open (or create empty) the index of that kind, without filling it."""
    directory = home / "index" / DIRS[kind]
    if kind == "exact":
        return FlatFileIndex(directory)
    ivf = FaissIvfIndex(
        directory,
        expected=catalog.face_state()[0],
        nprobe=settings.index.nprobe,
        compact_fraction=settings.index.compact_fraction,
    )
    return ExactRerankIndex(ivf, catalog.embeddings_found, margin=settings.index.rerank_margin)


def build_index(
    kind: str,
    home: Path,
    settings: Settings,
    catalog: SqliteCatalog,
    progress: Callable[[int, int], None] | None = None,
) -> VectorIndex:
    """A fresh index of that kind filled from the catalog; other kinds' files deleted."""
    total = catalog.face_state()[0]
    shutil.rmtree(home / "index" / DIRS[kind], ignore_errors=True)
    index = make_index(kind, home, settings, catalog)
    index.reset(catalog.model_key())
    if kind == "ann" and total > 0:
        ivf: FaissIvfIndex = index.inner
        ivf.train(catalog.sample_embeddings(ivf.train_size), planned=total)
        fill(ivf.add_bulk, catalog, progress)
        ivf.compact()  # one snapshot holding everything
    else:
        fill(index.add, catalog, progress)
    for other, name in DIRS.items():
        if other != kind:
            shutil.rmtree(home / "index" / name, ignore_errors=True)
    built: VectorIndex = index
    return built


def fill(
    add: Callable[[Ids, Vectors], None],
    catalog: SqliteCatalog,
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


def open_index(home: Path, settings: Settings, catalog: SqliteCatalog) -> VectorIndex:
    """The home's index, switched or retrained first when the collection asks for it."""
    current = current_kind(home)
    count = catalog.face_state()[0]
    kind = wanted_kind(settings, home, count, current)
    if current != kind:
        if current is None and count == 0:
            opened: VectorIndex = make_index(kind, home, settings, catalog)
            return opened
        return build_index(kind, home, settings, catalog)
    try:
        index = make_index(kind, home, settings, catalog)
    except BackendUnavailable:  # damaged files: the index is derived, rebuild it
        return build_index(kind, home, settings, catalog)
    if kind == "ann" and needs_retrain(index.inner, count):
        index.close()
        return build_index(kind, home, settings, catalog)
    opened = index
    return opened


def needs_retrain(ivf: FaissIvfIndex, count: int) -> bool:
    return ivf.trained and count > RETRAIN_GROWTH * max(ivf.trained_for, 1)


def outgrown(index: VectorIndex, count: int) -> bool:
    """True when an approximate index's cells were trained for a much smaller collection."""
    inner = getattr(index, "inner", None)
    return isinstance(inner, FaissIvfIndex) and needs_retrain(inner, count)
