"""Retention on a schedule: the server removes expired images every so often.

Runs in the background of the app's event loop, but the work itself goes through the
server's engine lock on a worker thread (the API's gateway), like any API call that
writes the catalog. A failed run is logged and the schedule goes on; so is a run skipped
because another process (another server on the same catalog) was running retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from facesearch.domain import Requester
from facesearch.engine import FaceSearch
from facesearch.errors import BackendUnavailable
from facesearch.governance.erasure import Receipt

T = TypeVar("T")

log = logging.getLogger("facesearch.retention")
SCHEDULER = Requester(actor="system:retention-schedule", channel="api")


class Locked(Protocol):
    """The engine, called one call at a time (the API's gateway)."""

    @property
    def engine(self) -> FaceSearch: ...

    async def locked(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...


class Forgets(Protocol):
    """What keeps copies of faces (the API's thumbnail cache): removed faces go from it."""

    def discard(self, face_ids: Iterable[int]) -> None: ...


class RetentionSchedule:
    """Runs retention at start-up and then every ``interval_s`` seconds (0: never)."""

    def __init__(self, gateway: Locked, thumbnails: Forgets, interval_s: float) -> None:
        self.gateway = gateway
        self.thumbnails = thumbnails
        self.interval_s = interval_s
        self.runs = 0
        self.last: Receipt | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._sleeping = False

    async def tick(self) -> Receipt:
        """One run, now."""
        engine = self.gateway.engine
        receipt = await self.gateway.locked(engine.run_retention, who=SCHEDULER)
        self.thumbnails.discard(receipt.face_ids)
        self.runs += 1
        self.last = receipt
        if receipt.images_removed:
            log.info("retention removed %d expired image(s)", receipt.images_removed)
        return receipt

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
            except BackendUnavailable as exc:  # busy elsewhere, or a store down: no traceback
                log.warning("scheduled retention run skipped: %s", exc)
            except Exception:  # a failed run must not end the schedule
                log.exception("scheduled retention run failed")
            if self._stopping:
                break
            self._sleeping = True
            try:
                await asyncio.sleep(self.interval_s)
            finally:
                self._sleeping = False

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._loop())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        # A run in progress is let finish: cancelling it would leave its work done on the
        # worker thread (and audited) but not counted here.
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            if self._sleeping:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
