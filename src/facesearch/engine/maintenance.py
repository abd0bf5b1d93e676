"""Keeping the index in line with the catalog: open, repair, switch, compact, rebuild.

The index files of a home may be written by several processes (a server and a
command-line ingest); :class:`Maintenance` holds the home's index lock around every
write, reloads what others wrote, and watches the catalog for their changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from facesearch.engine.parts import Parts
from facesearch.errors import BackendUnavailable, InvalidInput
from facesearch.index import factory
from facesearch.index.lock import IndexLock

# A process that opens a home while another writes its index waits this long, then
# searches an in-memory copy rather than wait for a long ingest to end.
OPEN_WAIT_SECONDS = 2.0


class Maintenance:
    """The index lifecycle of one home."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        # How long an index write waits for another process writing the same home (None:
        # as long as it takes; the server sets a bound and answers 503 past it).
        self.lock_wait: float | None = None
        self._lock = IndexLock(parts.home / "index.lock")
        self._files_seen: int | None = None  # the lock's write count our index reflects
        self._repaired: dict[str, int] = {}
        self.behind = False  # another process was writing the index at the last catch-up
        self._catalog_seen = parts.catalog.writes.version[0]

    def open_index(self) -> dict[str, int]:
        """Open the home's index and repair it from the catalog; returns the repairs.

        While another process writes the index files (a long ingest), they are not ours to
        open: this process then searches an in-memory copy made from the catalog, and
        opens the files when it first writes or catches up.
        """
        parts = self.parts
        if parts.sealer.enabled:
            return self.sync_index()
        try:
            with self.writing(wait=OPEN_WAIT_SECONDS):
                return self._repaired
        except BackendUnavailable:
            parts.index.reset(parts.catalog.model_key())
            factory.fill(parts.index.add, parts.catalog)
            return {}

    @contextmanager
    def writing(self, wait: float | None = None, changes: bool = False) -> Iterator[None]:
        """Hold the home's index lock around writes to the index files. If another process
        wrote them since this one last did, reopen them first (and repair them from the
        catalog); on the way out, count a write if the index changed (or ``changes``)."""
        parts = self.parts
        if parts.sealer.enabled:  # an index in memory only: nothing shared with anyone
            yield
            return
        outer = not self._lock.held
        with self._lock.holding(self.lock_wait if wait is None else wait):
            if outer and self._lock.writes() != self._files_seen:
                kind = factory.current_kind(parts.home)
                parts.index.close()
                parts.index = factory.open_index(parts.home, parts.settings, parts.catalog)
                self._files_seen = self._lock.writes()
                self._repaired = self.sync_index()
                # Opening may have rebuilt the files (another kind): others must reload.
                changes = changes or bool(self._repaired) or parts.index.kind != kind
            before = (parts.index.kind, parts.index.state())
            try:
                yield
            finally:
                changed = changes or (parts.index.kind, parts.index.state()) != before
                if outer and changed:
                    self._files_seen = self._lock.count_write()

    def catch_up(self) -> bool:
        """See what other processes committed to this home (a command-line ingest beside
        a server): when the catalog changed, reload the index files they wrote and repair
        the index from the catalog. Costs one SQLite pragma when nothing changed.

        Returns False while another process is writing the index: this one then keeps
        searching what it has (erased images are never shown: results come from the
        catalog) and catches up on a later call.
        """
        version = self.parts.catalog.writes.version[0]
        if version == self._catalog_seen:
            return True
        try:
            with self.writing(wait=0.0):
                self._repaired = self.sync_index()
        except BackendUnavailable:
            self.behind = True
            return False
        self._catalog_seen, self.behind = version, False
        return True

    def sync_index(self) -> dict[str, int]:
        """Bring the index in line with the catalog (the truth). Returns what was repaired."""
        catalog, index = self.parts.catalog, self.parts.index
        count, id_sum = catalog.face_state()
        state = index.state()
        if state.count == count and state.id_sum == id_sum:
            return {}
        catalog_ids = catalog.face_ids()
        held = index.ids()
        extra = np.setdiff1d(held, catalog_ids)
        missing = np.setdiff1d(catalog_ids, held)
        removed = index.remove(extra.tolist()) if len(extra) else 0
        for start in range(0, len(missing), 10_000):
            chunk = missing[start : start + 10_000]
            index.add(chunk, catalog.embeddings(chunk.tolist()))
        return {"added": len(missing), "removed": removed}

    def switch_index(self) -> bool:
        """Switch between exact and approximate search (or retrain) when the size asks."""
        if self.parts.sealer.enabled:
            return False  # encrypted homes always search exactly, in memory
        with self.writing():
            return self._switch_index()

    def _switch_index(self) -> bool:
        parts = self.parts
        count = parts.catalog.face_state()[0]
        kind = factory.wanted_kind(parts.settings, parts.home, count, parts.index.kind)
        if kind == parts.index.kind and not factory.outgrown(parts.index, count):
            return False
        parts.index.close()
        parts.index = factory.build_index(kind, parts.home, parts.settings, parts.catalog)
        return True

    def compact(self) -> dict[str, Any]:
        """Rewrite the index files so that no removed face's vector is left in them."""
        with self.writing(changes=True):
            self.parts.index.compact()
        return {"kind": self.parts.index.kind, "faces": self.parts.index.state().count}

    def reindex(
        self, progress: Callable[[int, int], None] | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """Rebuild the index from the catalog's embeddings (``kind``: exact, ann or auto)."""
        with self.writing(changes=True):
            return self._reindex(progress, kind)

    def _reindex(
        self, progress: Callable[[int, int], None] | None, kind: str | None
    ) -> dict[str, Any]:
        parts = self.parts
        if parts.sealer.enabled:
            if kind == "ann":
                raise InvalidInput("encrypted homes search exactly, in memory: no ANN index")
            parts.index.reset(parts.catalog.model_key())
            factory.fill(parts.index.add, parts.catalog, progress)
            return {"kind": parts.index.kind, "faces": parts.index.state().count}
        if kind is not None:
            factory.force_kind(parts.home, kind)
        count = parts.catalog.face_state()[0]
        wanted = factory.wanted_kind(parts.settings, parts.home, count, parts.index.kind)
        parts.index.close()
        parts.index = factory.build_index(
            wanted, parts.home, parts.settings, parts.catalog, progress
        )
        return {"kind": parts.index.kind, "faces": parts.index.state().count}
