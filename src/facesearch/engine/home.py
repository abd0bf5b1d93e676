"""One open home: the parts :func:`facesearch.parts.build_parts` made from the settings,
shared by the engine's jobs (search, ingest, maintenance, governance), with the models
loaded when first used and the engine's audit helper.

The engine only knows the parts by their ports: which catalog or index a home has is
decided in ``facesearch/parts.py``.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from facesearch.catalog.ports import Catalog, Locks
from facesearch.config import Settings
from facesearch.domain import Event, ModelId, Requester, Source
from facesearch.errors import NotFound
from facesearch.execution.ports import Executor
from facesearch.governance.audit import AuditEvent, AuditLog
from facesearch.governance.suppression import SuppressionList
from facesearch.imaging import DecodeLimits
from facesearch.index.ports import ManagedIndex
from facesearch.parts import Parts
from facesearch.security.sealing import Sealer
from facesearch.vision.ports import FaceDetector, FaceEmbedder
from facesearch.vision.registry import ModelSpec


class Home:
    """Settings, stores, index and models of one home (the models load when first used:
    stats and show need none)."""

    def __init__(
        self,
        *,
        settings: Settings,
        built: Parts,
        limits: DecodeLimits,
        detector: FaceDetector | None = None,
        embedder: FaceEmbedder | None = None,
    ) -> None:
        self.settings = settings
        self.model_spec: ModelSpec = built.model_spec
        self.home = Path(settings.home)
        self.limits = limits
        self.sealer: Sealer = built.sealer
        self.catalog: Catalog = built.catalog
        self.index: ManagedIndex = built.index
        self.audit: AuditLog = built.audit
        self.suppressions: SuppressionList = built.suppressions
        self.locks: Locks = built.locks
        self._executors = built.executor
        self._detector = detector
        self._embedder = embedder

    def executor(self, workers: int) -> Executor:
        """Where an ingest's analysis runs (inline, worker processes, later a cluster)."""
        return self._executors(workers)

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = self.model_spec.build_detector()
        return self._detector

    @property
    def embedder(self) -> FaceEmbedder:
        if self._embedder is None:
            self._embedder = self.model_spec.build_embedder()
        return self._embedder

    @property
    def model(self) -> ModelId:
        """The model of the configured embedder (loads it)."""
        return self.embedder.model

    def default_requester(self) -> Requester:
        return local_requester(self.settings)

    def record(self, event: Event, who: Requester | None) -> None:
        """Append the audit entry of ``event``, made by ``who`` (default: this process's
        user). Every job records its own state changes and reads of the log."""
        self.audit.append(AuditEvent.of(event, who or self.default_requester()))

    def source(self, name: str) -> Source:
        """A registered source, or why there is none (every job refuses a mistyped name)."""
        found = self.catalog.get_source(name)
        if found is None:
            raise NotFound(
                f"source {name!r} is not registered: register it with its lawful basis and "
                "retention period first (facesearch sources add)"
            )
        return found

    def close(self) -> None:
        self.index.close()
        self.audit.close()
        self.suppressions.close()
        self.catalog.close()


def local_requester(settings: Settings) -> Requester:
    """Whoever runs this process, when a call names no requester."""
    return Requester(
        actor=f"local:{getpass.getuser()}",
        jurisdiction=settings.governance.requester_jurisdiction,
    )
