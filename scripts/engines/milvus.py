"""Start and stop a real Milvus standalone server for tests, benchmarks and demos.

The server is the PyPI package ``milvus`` (2.3.5: the Milvus standalone binary with an
embedded etcd and local storage), installed in a virtual environment of its own
(``.venv-milvus``, made by ``scripts/install-milvus.sh``) so that its pins never constrain
the project's. It runs as a separate process, detached from whoever started it, with its
data, logs and configuration under one folder and its ports chosen free at first start
(and kept for restarts, so that the URL stays the same)::

    python scripts/engines/milvus.py start DIR   # prints milvus://127.0.0.1:PORT/facesearch
    python scripts/engines/milvus.py stop DIR

Importable too (``start(folder)``, ``stop(folder)``), as the test plugin
tests/engines/milvus.py does. Deleted data is garbage-collected within seconds on these
servers (``dataCoord.gc``), not hours as with Milvus's defaults, so that tests can check
that erased vectors leave the storage; see docs/scaling.md for a production server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("FACESEARCH_MILVUS_VENV", ROOT / ".venv-milvus"))
STATE = "server.json"
START_TIMEOUT = 180.0
# Settings of a test server (Milvus's defaults keep dropped files for 3 hours).
EXTRA = {
    "dataCoord.gc.interval": 2,
    # Not missingTolerance (files that no segment names yet): at a few seconds the collector
    # deletes a compaction's output before the compaction commits it, and Milvus panics.
    "dataCoord.gc.dropTolerance": 2,
    "dataCoord.compaction.enableAutoCompaction": "false",
    "common.retentionDuration": 0,
    "rocksmq.retentionTimeInMinutes": 1,
    "rocksmq.compactionInterval": 60,
}


PORT_KEYS = (
    "etcd_port",
    "root_coord_port",
    "proxy_port",
    "proxy_internal_port",
    "query_coord_port",
    "query_node_port",
    "index_coord_port",
    "index_node_port",
    "data_coord_port",
    "data_node_port",
)


class MilvusUnavailable(RuntimeError):
    """The server is not installed or did not start."""


def installed() -> bool:
    return (VENV / "bin" / "python").exists()


def _state(folder: Path) -> dict[str, object]:
    path = folder / STATE
    return json.loads(path.read_text()) if path.exists() else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie child of ours is not alive
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return b"OK" in resp.read()
    except OSError:
        return False


def url(folder: Path, collection: str = "facesearch") -> str:
    state = _state(Path(folder))
    return f"milvus://127.0.0.1:{state['proxy_port']}/{collection}"


def running(folder: Path) -> bool:
    state = _state(Path(folder))
    return bool(state.get("pid")) and _alive(int(str(state["pid"])))


def start(folder: Path, collection: str = "facesearch", timeout: float = START_TIMEOUT) -> str:
    """Start the server keeping its data under ``folder`` (made if missing) and return its
    URL; returns at once when it already runs. MilvusUnavailable if it cannot start."""
    folder = Path(folder).resolve()
    if running(folder):
        return url(folder, collection)
    if not installed():
        raise MilvusUnavailable(f"Milvus is not installed at {VENV}: run scripts/install-milvus.sh")
    folder.mkdir(parents=True, exist_ok=True)
    first = not (folder / STATE).exists()
    try:
        return _start(folder, collection, timeout)
    except MilvusUnavailable:
        if not first:
            raise
        # A port taken between drawing it and Milvus listening: once more, new ports.
        (folder / STATE).unlink(missing_ok=True)
        return _start(folder, collection, timeout)


def _start(folder: Path, collection: str, timeout: float) -> str:
    done = subprocess.run(
        [str(VENV / "bin" / "python"), __file__, "_launch", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise MilvusUnavailable(f"Milvus did not launch: {done.stderr.strip()[-500:]}")
    state = _state(folder)
    deadline = time.monotonic() + timeout
    while not _healthy(int(str(state["metrics_port"]))):
        if not _alive(int(str(state["pid"]))):
            log = folder / "logs" / "milvus-stderr.log"
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            raise MilvusUnavailable(f"Milvus exited while starting: {tail}")
        if time.monotonic() > deadline:
            stop(folder)
            raise MilvusUnavailable(f"Milvus did not answer within {timeout:.0f} s")
        time.sleep(0.2)
    return url(folder, collection)


def stop(folder: Path, timeout: float = 10.0) -> None:
    """Stop the server of ``folder`` (SIGTERM, then SIGKILL past ``timeout``)."""
    state = _state(Path(folder))
    pid = int(str(state.get("pid") or 0))
    if not pid or not _alive(pid):
        return
    signals = [signal.SIGTERM]
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if signals:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signals.pop())
        if time.monotonic() > deadline:
            signals, deadline = [signal.SIGKILL], float("inf")
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _launch(folder: Path) -> None:
    """Inside .venv-milvus: write the configuration and start the binary, detached."""
    # This file is called milvus.py too: import the package, not this script.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
    import milvus  # type: ignore[import-not-found]

    previous = _state(folder)
    own = {"metrics_port", "etcd_peer_port", "etcd_client_port"}
    ports = {k: v for k, v in previous.items() if k.endswith("_port") and k not in own}
    # First start: every port drawn by the kernel, not counted up from Milvus's defaults,
    # where servers started at the same moment (parallel test runs) would meet.
    fresh = {} if ports else {k: _free_port() for k in PORT_KEYS}
    config = milvus.MilvusServerConfig(data_dir=str(folder), **fresh)
    for key, value in EXTRA.items():
        config.set(key, value)
    # The embedded etcd's own listeners: by default 2379 and 2380 whatever the template
    # says, so a second server on the machine would collide with the first.
    peer = int(str(previous.get("etcd_peer_port") or 0)) or _free_port()
    client = int(str(previous.get("etcd_client_port") or 0)) or _free_port()
    etcd = folder / "configs" / "etcd.yaml"
    etcd.parent.mkdir(parents=True, exist_ok=True)
    etcd.write_text(
        "name: facesearch\n"
        f"listen-peer-urls: http://127.0.0.1:{peer}\n"
        f"initial-advertise-peer-urls: http://127.0.0.1:{peer}\n"
        f"listen-client-urls: http://127.0.0.1:{client}\n"
        f"advertise-client-urls: http://127.0.0.1:{client}\n"
        f"initial-cluster: facesearch=http://127.0.0.1:{peer}\n"
    )
    config.resolve()
    if ports:
        # A restart keeps its ports (and URL). Not through resolve(): its check binds
        # without SO_REUSEADDR and fails for a minute after a stop (TIME_WAIT), while
        # Milvus itself can listen again at once.
        for key, port in ports.items():
            config.configurable_items[key][1] = port
        config.write_config()
    # The template has no etcd.config key for config.set to fill: add it.
    yaml = folder / "configs" / "milvus.yaml"
    text = yaml.read_text()
    yaml.write_text(text.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd}\n", 1))
    milvus._initialize_data_files(config.base_data_dir)
    metrics = int(str(previous.get("metrics_port") or 0)) or _free_port()
    exe = folder / "bin" / "milvus"
    env = dict(os.environ)
    env.update(
        DEPLOY_MODE="STANDALONE",
        METRICS_PORT=str(metrics),
        MILVUS_RUN_DIR=str(folder / "run"),
        LD_LIBRARY_PATH=f"{exe.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}",
    )
    logs = folder / "logs"
    with (
        open(logs / "milvus-stdout.log", "ab") as out,
        open(logs / "milvus-stderr.log", "ab") as err,
    ):
        proc = subprocess.Popen(
            [str(exe), "run", "standalone"],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives this launcher; stopped by its process group
        )
    state = {key: config.get(key) for key in config.configurable_items if key.endswith("_port")}
    state.update(
        pid=proc.pid,
        metrics_port=metrics,
        etcd_peer_port=peer,
        etcd_client_port=client,
        version=milvus.__version__,
    )
    (folder / STATE).write_text(json.dumps(state, indent=1))


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"start", "stop", "_launch"}:
        print("usage: milvus.py start|stop DIR", file=sys.stderr)
        return 2
    command, folder = argv[0], Path(argv[1]).resolve()
    if command == "_launch":
        _launch(folder)
        return 0
    if command == "stop":
        stop(folder)
        return 0
    try:
        print(start(folder))
    except MilvusUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
