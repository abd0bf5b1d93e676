"""A local Ray instance for the tests marked ``ray`` (a pytest plugin, see conftest.py).

Two CPUs, no dashboard, a small object store (the jobs carry file paths and vectors) and
a temporary folder of its own, started once per test module and stopped after it.

Ray gives a node 30 seconds to come up, a limit it does not let callers change; a busy
machine can miss it. A start that fails is cleaned up (its processes killed, so none is
left running into later tests) and tried again; the failure of the last try carries the
tail of Ray's own logs. Without Ray the tests are skipped (under ``CI=true`` they fail,
since ``make test`` installs the cluster extra).
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import signal
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..procs import processes

TRIES = 3
OBJECT_STORE_BYTES = 256 * 2**20
LOGS = ("raylet.err", "raylet.out", "gcs_server.err", "gcs_server.out", "dashboard_agent.err")


def ray_module() -> Any:
    """Ray, or a skip (a failure under CI=true)."""
    try:
        from facesearch.execution.ray import prepare_environment

        prepare_environment()
        import ray
    except ImportError:
        message = "ray is not installed (pip install -e '.[cluster]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return ray


def _log_tail(folder: Path, lines: int = 6) -> str:
    """The last lines of the Ray logs that say why a node did not start."""
    out = []
    for name in LOGS:
        for path in sorted(folder.glob(f"session_*/logs/{name}")):
            text = path.read_text(errors="replace").strip().splitlines()[-lines:]
            if text:
                out.append(f"--- {name}\n" + "\n".join(text))
    return "\n".join(out) or "(Ray wrote no logs)"


def _kill_leftovers(folder: Path) -> None:
    """Kill what a failed start left running (its command lines name the folder), and
    collect the Popen objects Ray dropped, so none warns later that it still runs."""
    marks = {str(folder).encode(), str(folder.resolve()).encode()}
    for pid, cmdline in processes():
        if any(mark in cmdline for mark in marks) and pid != os.getpid():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def start(ray: Any, folder: Path) -> None:
    """ray.init a local instance in ``folder``: TRIES tries, then fail with Ray's logs."""
    reason = ""
    for attempt in range(1, TRIES + 1):
        here = folder / f"try{attempt}"
        here.mkdir()
        try:
            ray.init(
                num_cpus=2,
                object_store_memory=OBJECT_STORE_BYTES,
                include_dashboard=False,
                _temp_dir=str(here),
                log_to_driver=False,
                logging_level="ERROR",
            )
            return
        except Exception as exc:  # Ray raises a bare Exception when its node is late
            reason = f"{exc}\n{_log_tail(here)}"
            ray.shutdown()
            _kill_leftovers(here)
    pytest.fail(f"a local Ray did not start in {TRIES} tries (logs in {folder}): {reason}")


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A local Ray instance for the module; its GCS address (for CLI runs: RAY_ADDRESS).
    Its folder is removed afterwards, or kept (and named) when its start failed."""
    ray = ray_module()
    # Ray's socket paths must stay short: a folder directly under /tmp, not pytest's.
    folder = Path(tempfile.mkdtemp(prefix="fs-ray-", dir="/tmp"))
    start(ray, folder)
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
