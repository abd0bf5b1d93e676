"""The contract of the locks every process sharing a catalog takes (``catalog.ports.Locks``),
run against every adapter in ``adapters.LOCKS``: a named lock is held by one process at a
time, across processes and threads; a waiter gets it when it is released, or a
BackendUnavailable once its wait is over; a process that dies holding it releases it.
Retention runs under the lock ``retention`` (engine/governance.py)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from facesearch.errors import BackendUnavailable

from .adapters import LOCKS, params

NAME = "retention"


@pytest.fixture(params=params(LOCKS))
def adapter(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def hold(adapter: str, folder: str, held: Any, release: Any, after: float | None) -> None:
    """In another process: take the lock, say so, and keep it until told (or ``after``
    seconds)."""
    locks = LOCKS[adapter].open(Path(folder))
    with locks.exclusive(NAME, None):
        held.set()
        release.wait(after)


def refused(take: Callable[[], Any]) -> float:
    """Seconds ``take`` waited before BackendUnavailable (fails if it got the lock)."""
    start = time.monotonic()
    with pytest.raises(BackendUnavailable, match="another process"):
        take()
    return time.monotonic() - start


def holder(adapter: str, folder: Path, after: float | None = None) -> tuple[Any, Any]:
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    process = context.Process(target=hold, args=(adapter, str(folder), held, release, after))
    process.start()
    assert held.wait(60), "the other process did not take the lock"
    return process, release


def test_a_lock_held_by_another_process_is_refused_after_the_wait_then_granted(
    adapter: str, tmp_path: Path
) -> None:
    locks = LOCKS[adapter].open(tmp_path)
    process, release = holder(adapter, tmp_path)
    try:

        def take() -> None:
            with locks.exclusive(NAME, 0.3):
                pass

        assert refused(take) >= 0.3
        with locks.exclusive("another name", 0.3):  # other names are free
            pass
        release.set()
        with locks.exclusive(NAME, 30):
            pass
    finally:
        release.set()
        process.join(30)
    assert process.exitcode == 0


def test_a_waiter_gets_the_lock_when_the_holder_is_done(adapter: str, tmp_path: Path) -> None:
    locks = LOCKS[adapter].open(tmp_path)
    process, _ = holder(adapter, tmp_path, after=1.0)  # holds it one more second
    start = time.monotonic()
    with locks.exclusive(NAME, None):
        assert time.monotonic() - start >= 0.5
    process.join(30)
    assert process.exitcode == 0


def test_a_process_that_dies_holding_the_lock_releases_it(adapter: str, tmp_path: Path) -> None:
    locks = LOCKS[adapter].open(tmp_path)
    process, _ = holder(adapter, tmp_path)
    process.kill()
    process.join(30)
    with locks.exclusive(NAME, 30):
        pass


def test_threads_of_one_process_take_turns(adapter: str, tmp_path: Path) -> None:
    locks = LOCKS[adapter].open(tmp_path)
    held, release = threading.Event(), threading.Event()

    def keep() -> None:
        with locks.exclusive(NAME, None):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=keep)
    thread.start()
    try:
        assert held.wait(30)

        def take() -> None:
            with locks.exclusive(NAME, 0.2):
                pass

        assert refused(take) >= 0.2
    finally:
        release.set()
        thread.join(30)
    with locks.exclusive(NAME, 5):
        pass
