"""The suppression list: templates of people who objected, kept for that sole purpose.

Kept in their own store, apart from the gallery (``catalog.ports.SuppressionStore``), and
never searched as a gallery: they are only compared with faces being ingested (which are
then skipped) and with search results (which are then withheld). This module holds the
rules (a consent reference is required; what counts as a match); the store keeps rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from facesearch.catalog.ports import SuppressionStore, Templates
from facesearch.errors import InvalidInput


class SuppressionList:
    def __init__(self, store: SuppressionStore) -> None:
        self.store = store

    def add(
        self, template: npt.NDArray[np.float32], model: str, consent_ref: str, note: str
    ) -> int:
        if not consent_ref.strip():
            raise InvalidInput(
                "a suppression needs the reference of the person's consent to keep their template"
            )
        return self.store.add(template, model, consent_ref, note)

    def remove(self, suppression_id: int) -> None:
        """NotFound when there is no such suppression."""
        self.store.remove(suppression_id)

    def list(self) -> list[dict[str, Any]]:
        return self.store.list()

    def templates(self, model: str) -> Templates:
        """The ids and templates of the suppressions made with ``model`` (only those)."""
        return self.store.templates(model)

    def matches(
        self, vectors: npt.NDArray[np.float32], model: str, threshold: float
    ) -> npt.NDArray[np.bool_]:
        """For each row of ``vectors``: does it match a suppressed person?"""
        _, templates = self.templates(model)
        if len(templates) == 0 or len(vectors) == 0:
            return np.zeros(len(vectors), dtype=bool)
        best: npt.NDArray[np.bool_] = (vectors @ templates.T).max(axis=1) >= threshold
        return best

    def count(self) -> int:
        return self.store.count()

    def close(self) -> None:
        self.store.close()
