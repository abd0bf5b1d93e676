"""LocalIndex: the index kept in files beside the catalog (or in memory only).

It answers searches through whichever index the collection's size asks for (exact
``flat/`` or approximate ``ivf/``, see kinds.py) and keeps it in line with the catalog:
repairs on open, switches kind as the collection grows or shrinks, and, since a server
and a command-line ingest may share the folder, takes the folder's lock (lock.py) around
every write and reloads the files when another process wrote them.

An encrypted catalog gets an index in memory only (``in_memory``): files would be a
plaintext copy of the templates. It is rebuilt from the catalog on every open and is
nobody else's, so it needs no lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facesearch.catalog.ports import Catalog
from facesearch.config import IndexSettings
from facesearch.errors import BackendUnavailable, InvalidInput
from facesearch.index.local import kinds
from facesearch.index.local.lock import IndexLock
from facesearch.index.local.memory import MemoryIndex
from facesearch.index.ports import (
    FaceFilter,
    Ids,
    IndexState,
    Progress,
    VectorIndex,
    Vectors,
)

# A process that opens the index while another writes it waits this long, then searches
# an in-memory copy rather than wait for a long ingest to end.
OPEN_WAIT_SECONDS = 2.0
# Missing faces are added back from the catalog this many at a time.
REPAIR_CHUNK = 10_000


class LocalIndex:
    """A VectorIndex with its lifecycle, in the folder ``root`` (``<home>/index``)."""

    def __init__(
        self, root: Path, settings: IndexSettings, catalog: Catalog, *, in_memory: bool = False
    ) -> None:
        self.root = root
        self.settings = settings
        self.catalog = catalog
        self.in_memory = in_memory
        # Until open() finds the files: an empty index in memory.
        self.current: VectorIndex = MemoryIndex()
        self._lock = IndexLock(root.with_name(root.name + ".lock"))
        self._files_seen: int | None = None  # the lock's write count our index reflects
        self._repaired: dict[str, int] = {}
        self._catalog_seen = catalog.writes.version[0]

    # -- VectorIndex: the index that answers now -----------------------------------------
    @property
    def kind(self) -> str:
        return self.current.kind

    def add(self, ids: Ids, vectors: Vectors) -> None:
        self.current.add(ids, vectors)

    def remove(self, ids: Iterable[int]) -> int:
        return self.current.remove(ids)

    def search(
        self,
        query: Vectors,
        k: int,
        allowed_ids: Ids | None = None,
        where: FaceFilter | None = None,
    ) -> tuple[Ids, npt.NDArray[np.float32]]:
        if where is not None:  # the local index keeps no labels: the catalog resolves them
            ids = filtered_ids(self.catalog, where)
            allowed_ids = ids if allowed_ids is None else np.intersect1d(allowed_ids, ids)
        return self.current.search(query, k, allowed_ids)

    def relabel(self, face_ids: Sequence[int]) -> None:
        """Nothing kept here but ids and vectors: filters are resolved by the catalog."""

    def ids(self) -> Ids:
        return self.current.ids()

    def state(self) -> IndexState:
        return self.current.state()

    def compact(self) -> None:
        self.current.compact()

    def reset(self, model_key: str | None) -> None:
        self.current.reset(model_key)

    def close(self) -> None:
        self.current.close()

    # -- lifecycle -----------------------------------------------------------------------
    def open(self) -> dict[str, int]:
        """Open the index and repair it from the catalog; returns the repairs.

        While another process writes the index files (a long ingest), they are not ours to
        open: this process then searches an in-memory copy made from the catalog, and
        opens the files when it first writes or catches up.
        """
        if self.in_memory:
            return self.sync()
        self.root.parent.mkdir(parents=True, exist_ok=True)  # where the lock file goes
        try:
            with self.writing(wait=OPEN_WAIT_SECONDS):
                return self._repaired
        except BackendUnavailable:
            self.current.reset(self.catalog.model_key())
            kinds.fill(self.current.add, self.catalog)
            return {}

    @contextmanager
    def writing(self, wait: float | None, changes: bool = False) -> Iterator[None]:
        """Hold the folder's lock around writes to the index files. If another process
        wrote them since this one last did, reopen them first (and repair them from the
        catalog); on the way out, count a write if the index changed (or ``changes``)."""
        if self.in_memory:  # nothing shared with anyone
            yield
            return
        outer = not self._lock.held
        with self._lock.holding(wait):
            if outer and self._lock.writes() != self._files_seen:
                kind = kinds.current_kind(self.root)
                self.current.close()
                self.current = kinds.open_index(self.root, self.settings, self.catalog)
                self._files_seen = self._lock.writes()
                self._repaired = self.sync()
                # Opening may have rebuilt the files (another kind): others must reload.
                changes = changes or bool(self._repaired) or self.current.kind != kind
            before = (self.current.kind, self.current.state())
            try:
                yield
            finally:
                changed = changes or (self.current.kind, self.current.state()) != before
                if outer and changed:
                    self._files_seen = self._lock.count_write()

    def catch_up(self) -> bool:
        """See what other processes committed to the catalog (a command-line ingest beside
        a server): when it changed, reload the index files they wrote and repair the index
        from the catalog. Costs one look at the catalog's write counter when nothing
        changed.

        Returns False while another process is writing the index: the caller then keeps
        searching what it has (erased images are never shown: results come from the
        catalog) and catches up on a later call.
        """
        version = self.catalog.writes.version[0]
        if version == self._catalog_seen:
            return True
        try:
            with self.writing(wait=0.0):
                self._repaired = self.sync()
        except BackendUnavailable:
            return False
        self._catalog_seen = version
        return True

    def sync(self) -> dict[str, int]:
        """Bring the index in line with the catalog (the truth). Returns what was repaired."""
        count, id_sum = self.catalog.face_state()
        state = self.current.state()
        if state.count == count and state.id_sum == id_sum:
            return {}
        catalog_ids = self.catalog.face_ids()
        held = self.current.ids()
        extra = np.setdiff1d(held, catalog_ids)
        missing = np.setdiff1d(catalog_ids, held)
        removed = self.current.remove(extra.tolist()) if len(extra) else 0
        for start in range(0, len(missing), REPAIR_CHUNK):
            chunk = missing[start : start + REPAIR_CHUNK]
            self.current.add(chunk, self.catalog.embeddings(chunk.tolist()))
        return {"added": len(missing), "removed": removed}

    def fit(self) -> bool:
        """Switch between exact and approximate search (or retrain) when the size asks."""
        if self.in_memory:
            return False  # encrypted homes always search exactly, in memory
        count = self.catalog.face_state()[0]
        kind = kinds.wanted_kind(self.settings, self.root, count, self.current.kind)
        if kind == self.current.kind and not kinds.outgrown(self.current, count):
            return False
        self.current.close()
        self.current = kinds.build_index(kind, self.root, self.settings, self.catalog)
        return True

    def rebuild(self, kind: str | None = None, progress: Progress | None = None) -> None:
        """Rebuild from the catalog's embeddings (``kind``: exact, ann or auto)."""
        if self.in_memory:
            if kind == "ann":
                raise InvalidInput("encrypted homes search exactly, in memory: no ANN index")
            self.current.reset(self.catalog.model_key())
            kinds.fill(self.current.add, self.catalog, progress)
            return
        if kind is not None:
            kinds.force_kind(self.root, kind)
        count = self.catalog.face_state()[0]
        wanted = kinds.wanted_kind(self.settings, self.root, count, self.current.kind)
        self.current.close()
        self.current = kinds.build_index(wanted, self.root, self.settings, self.catalog, progress)


def filtered_ids(catalog: Catalog, where: FaceFilter) -> Ids:
    """The sorted ids of the faces ``where`` lets through, read from the catalog: each
    condition on its own (a copy in one of the sources; a copy in a source placed in one
    of the jurisdictions; a copy not expired at ``now``), as an index that keeps the
    labels per face (Milvus) applies them."""
    ids: Ids | None = None

    def narrow(found: Ids) -> None:
        nonlocal ids
        ids = found if ids is None else np.intersect1d(ids, found)

    if where.sources is not None:
        narrow(catalog.face_ids(list(where.sources)) if where.sources else _none())
    if where.jurisdictions is not None:
        wanted = {j.upper() for j in where.jurisdictions}
        placed = [
            s.name
            for s in catalog.list_sources(counts=False)
            if wanted & {j.upper() for j in s.jurisdictions}
        ]
        narrow(catalog.face_ids(placed) if placed else _none())
    if where.now is not None:
        names = [s.name for s in catalog.list_sources(counts=False)]
        expired = catalog.expired_provenance(where.now, names) if names else []
        rows = catalog.describe_provenance(expired) if expired else []
        images = sorted({int(r["image_id"]) for r in rows})
        live = set(catalog.provenance_of(image_ids=images)) - set(expired) if images else set()
        kept = {int(r["image_id"]) for r in catalog.describe_provenance(sorted(live))}
        gone = [i for i in images if i not in kept]
        faces = [f.id for img in catalog.get_images(gone).values() for f in img.faces]
        narrow(np.setdiff1d(catalog.face_ids(), np.asarray(faces, dtype=np.int64)))
    return catalog.face_ids() if ids is None else ids


def _none() -> Ids:
    return np.empty(0, dtype=np.int64)
