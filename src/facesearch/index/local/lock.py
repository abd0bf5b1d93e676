"""One writer of a home's index files at a time, across processes.

A server and a command-line ingest (or erasure, or reindex) may share a home. Each keeps
the index in memory and appends to its files, assuming nobody else does; two writers at
once would interleave rows or cut off each other's unacknowledged tail on open. So every
process takes this lock (``flock`` on ``<home>/index.lock``, released by the kernel if the
process dies) around whatever writes the index files, and counts its writes in the lock
file. A process that finds the count changed since it last looked knows another process
wrote the files, and reloads them before it writes or searches.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from facesearch.errors import BackendUnavailable

POLL_SECONDS = 0.05


class IndexLock:
    """A re-entrant, inter-process lock with a write counter, on one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._depth = 0
        self._thread = threading.RLock()
        _OPEN.add(self)

    @property
    def held(self) -> bool:
        return self._depth > 0

    def acquire(self, wait: float | None) -> bool:
        """Take the lock, waiting up to ``wait`` seconds (None: as long as it takes)."""
        if not self._thread.acquire(timeout=-1 if wait is None else wait):
            return False
        if self._depth:
            self._depth += 1
            return True
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            self._thread.release()
            raise
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if wait is not None else 0))
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    self._thread.release()
                    return False
                time.sleep(POLL_SECONDS)
        self._fd, self._depth = fd, 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._thread.release()

    @contextmanager
    def holding(self, wait: float | None) -> Iterator[None]:
        """The lock, or BackendUnavailable once ``wait`` seconds have passed."""
        if not self.acquire(wait):
            raise BackendUnavailable(
                "another process is writing this home's index (an ingest from the command "
                "line?): try again when it has finished"
            )
        try:
            yield
        finally:
            self.release()

    def writes(self) -> int:
        """How many times the index files were written (read with the lock held)."""
        assert self._fd is not None, "read the write count with the lock held"
        os.lseek(self._fd, 0, os.SEEK_SET)
        text = os.read(self._fd, 32).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else 0

    def count_write(self) -> int:
        """Record one more write; returns the new count."""
        assert self._fd is not None, "count a write with the lock held"
        count = self.writes() + 1
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(count).encode("ascii"))
        return count


# Ingest workers are forked while the lock is held. A child's copy of the descriptor would
# keep the lock alive if the parent died before its workers: children drop their copy
# (closing it does not unlock the parent's) and start with the lock not held.
_OPEN: weakref.WeakSet[IndexLock] = weakref.WeakSet()


def _forget_in_child() -> None:
    for lock in list(_OPEN):
        if lock._fd is not None:
            os.close(lock._fd)
        lock._fd, lock._depth, lock._thread = None, 0, threading.RLock()


os.register_at_fork(after_in_child=_forget_in_child)
