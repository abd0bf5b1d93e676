"""FileLocks: the ``Locks`` of a SQLite catalog, ``flock`` on a file beside it.

A SQLite catalog is shared only by processes on one machine, which the kernel's file
locks serialise (released by the kernel if the process dies), as the local index's lock.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from facesearch.errors import BackendUnavailable

POLL_SECONDS = 0.05


class FileLocks:
    """``<folder>/<name>.lock`` for each name."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # The threads of one process queue here rather than poll the file.
        self._threads: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _thread_lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._threads.setdefault(name, threading.Lock())

    @contextmanager
    def exclusive(self, name: str, wait: float | None) -> Iterator[None]:
        deadline = None if wait is None else time.monotonic() + wait
        in_process = self._thread_lock(name)
        if not in_process.acquire(timeout=-1 if wait is None else wait):
            raise busy(name)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait is None else fcntl.LOCK_NB))
                        break
                    except BlockingIOError:
                        if deadline is not None and time.monotonic() >= deadline:
                            raise busy(name) from None
                        time.sleep(POLL_SECONDS)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        finally:
            in_process.release()


def busy(name: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"another process is running {name} on this home: try again when it has finished"
    )
