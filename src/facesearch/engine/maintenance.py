"""Keeping the index in line with the catalog: open, repair, switch, compact, rebuild.

The index adapter owns how (for the local index: exact or approximate files, the lock
that lets a server and a command-line ingest share them, an in-memory copy for encrypted
homes); this module decides when, and how long a write may wait for another process.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from facesearch.engine.home import Home


class Maintenance:
    """The index lifecycle of one home."""

    def __init__(self, parts: Home) -> None:
        self.parts = parts
        # How long an index write waits for another process writing the same home (None:
        # as long as it takes; the server sets a bound and answers 503 past it).
        self.lock_wait: float | None = None
        self.behind = False  # another process was writing the index at the last catch-up

    def open_index(self) -> dict[str, int]:
        """Open the home's index and repair it from the catalog; returns the repairs."""
        return self.parts.index.open()

    def writing(
        self, wait: float | None = None, changes: bool = False
    ) -> AbstractContextManager[None]:
        """Hold the index for writing (other processes may share it); ``changes``: count
        a write even if the index looks the same (others must reload)."""
        return self.parts.index.writing(self.lock_wait if wait is None else wait, changes)

    def catch_up(self) -> bool:
        """See what other processes committed to this home (a command-line ingest beside
        a server) and bring the index in line. Returns False while another process is
        writing the index: this one then keeps searching what it has (erased images are
        never shown: results come from the catalog) and catches up on a later call.
        """
        caught_up = self.parts.index.catch_up()
        self.behind = not caught_up
        return caught_up

    def sync_index(self) -> dict[str, int]:
        """Bring the index in line with the catalog (the truth). Returns what was repaired."""
        return self.parts.index.sync()

    def switch_index(self) -> bool:
        """Switch between exact and approximate search (or retrain) when the size asks."""
        with self.writing():
            return self.parts.index.fit()

    def compact(self) -> dict[str, Any]:
        """Rewrite the index files so that no removed face's vector is left in them."""
        with self.writing(changes=True):
            self.parts.index.compact()
        return self._summary()

    def reindex(
        self, progress: Callable[[int, int], None] | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """Rebuild the index from the catalog's embeddings (``kind``: exact, ann or auto)."""
        with self.writing(changes=True):
            self.parts.index.rebuild(kind, progress)
        return self._summary()

    def _summary(self) -> dict[str, Any]:
        return {"kind": self.parts.index.kind, "faces": self.parts.index.state().count}
