"""The index lock: one writer at a time across processes, freed when its holder dies, and
never kept alive by the holder's forked workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from facesearch.errors import BackendUnavailable
from facesearch.index.local.lock import IndexLock

HOLD = """
import sys, time
from pathlib import Path
from facesearch.index.local.lock import IndexLock
lock = IndexLock(Path(sys.argv[1]))
lock.acquire(None)
lock.count_write()
print("held", flush=True)
time.sleep(120)
"""


def test_one_writer_at_a_time_and_freed_when_the_holder_dies(tmp_path: Path) -> None:
    path = tmp_path / "index.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        mine = IndexLock(path)
        assert not mine.acquire(0.2)
        with pytest.raises(BackendUnavailable, match="another process"), mine.holding(0.0):
            pass
    finally:
        holder.kill()
        holder.communicate()
    assert mine.acquire(5.0)
    assert mine.writes() == 1  # the dead holder's write is counted
    mine.release()


FORK_THEN_DIE = """
import os, sys, time
from pathlib import Path
from facesearch.index.local.lock import IndexLock
lock = IndexLock(Path(sys.argv[1]))
lock.acquire(None)
worker = os.fork()
if worker == 0:  # an ingest worker, still busy when its parent dies
    time.sleep(120)
    os._exit(0)
print(worker, flush=True)
time.sleep(120)
"""


def test_a_dead_holders_forked_worker_does_not_keep_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "index.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", FORK_THEN_DIE, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    worker = int(holder.stdout.readline())
    try:
        assert not IndexLock(path).acquire(0.1)
        holder.kill()
        holder.wait()  # (the worker still holds the other end of stdout)
        lock = IndexLock(path)
        assert lock.acquire(2.0)  # the worker lives on, the lock is free
        lock.release()
    finally:
        os.kill(worker, signal.SIGKILL)
        holder.stdout.close()
