"""How fast is search over HTTP, and what does HTTP add to the same search in Python?

Builds a home with N stored faces (seeded random unit vectors written straight to the
catalog and index, plus one real photo of the probe's person), serves it with
``facesearch serve`` in its own process, and measures over loopback:

- requests per second and p50/p95/p99 latency for 1, 4 and 16 concurrent clients,
- the server's split of each request into decode, detect, embed, search and respond
  (its Server-Timing header),
- the baseline: the same search through the Python API (``FaceSearch.search``) in this
  process, interleaved with HTTP requests (1 client), and the ratio of HTTP end-to-end
  latency to it; also the time spent outside the handler (client latency minus the
  server's own total: connection, multipart framing, ASGI).

    .venv/bin/python bench/http_search.py                 # 10k and 100k faces
    .venv/bin/python bench/http_search.py --faces 10000 --requests 20

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from facesearch import FaceSearch, Settings
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.catalog.ports import NewImage
from facesearch.domain import BoundingBox, DetectedFace, Provenance, Source
from facesearch.governance.retention import stamp

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "data" / "faces-dev"
PROBE = DEV / "face_recognition/examples/obama2.jpg"
GALLERY_PHOTO = DEV / "face_recognition/examples/obama.jpg"
SEED = 20261126


def build_home(home: Path, faces: int) -> None:
    """One real photo, then ``faces - 1`` synthetic single-face images."""
    rng = np.random.default_rng(SEED)
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        for name in ("real", "synthetic"):
            fs.add_source(
                Source(
                    name=name,
                    lawful_basis="legitimate_interests",
                    special_category_condition="legal_claims",
                    retention_days=3650,
                )
            )
        fs.ingest([GALLERY_PHOTO], source="real")
        keep = fs.source("synthetic").retention_days
        box = BoundingBox(10, 10, 110, 110)
        face = DetectedFace(box=box, score=1.0, landmarks=(), sharpness=50.0)
        ids: list[int] = []
        vectors = rng.standard_normal((faces - 1, fs.model.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for n, vec in enumerate(vectors):
            image = NewImage(
                sha256=f"{n:064x}",
                width=200,
                height=200,
                format="JPEG",
                bytes=1000,
                faces=[face],
                embeddings=vec[None, :],
            )
            copy = Provenance(source="synthetic", path=f"/synthetic/{n}.jpg")
            _, new, _ = fs.catalog.add_image(image, stamp(copy, keep), None)
            ids += new
        fs.index.add(np.asarray(ids, dtype=np.int64), vectors)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "p50": round(pick(0.50), 2),
        "p95": round(pick(0.95), 2),
        "p99": round(pick(0.99), 2),
        "mean": round(statistics.fmean(values), 2),
    }


def paired(home: Path, url: str, key: str, requests: int) -> dict[str, Any]:
    """The baseline, interleaved with HTTP: FaceSearch.search on the probe bytes in this
    process, then the same search over HTTP (1 client), ``requests`` times each.

    Alternating the two keeps them under the same background load (the machine is shared),
    so their ratio is fair even when absolute times drift during the run.
    """
    data = PROBE.read_bytes()
    py_ms: list[float] = []
    http_ms: list[float] = []
    server_ms: list[float] = []
    with (
        FaceSearch(Settings(home=home, workers=1)) as fs,
        httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=120) as http,
    ):
        fs.search(data)  # load the models
        for _ in range(requests):
            t = time.perf_counter()
            [result] = fs.search(data, top_k=20)
            py_ms.append((time.perf_counter() - t) * 1000)
            assert result.matches[0].image.path.endswith("obama.jpg")
            t = time.perf_counter()
            response = http.post(
                f"{url}/v1/search",
                files={"image": ("probe.jpg", data, "image/jpeg")},
                data={"top_k": "20", "purpose": "benchmark", "case_ref": "BENCH-1"},
            )
            http_ms.append((time.perf_counter() - t) * 1000)
            assert response.json()["matches"][0]["file_name"] == "obama.jpg"
            server_ms.append(server_timing(response.headers["server-timing"])["total"])
    py50, http50 = statistics.median(py_ms), statistics.median(http_ms)
    outside = [h - s for h, s in zip(http_ms, server_ms, strict=True)]
    return {
        "requests": requests,
        "python_api_ms": percentiles(py_ms),
        "http_ms": percentiles(http_ms),
        "http_over_python_p50": round(http50 / py50, 3),
        "http_overhead_pct_p50": round(100 * (http50 - py50) / py50, 1),
        "outside_handler_ms_p50": round(statistics.median(outside), 2),
    }


def start_server(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FACESEARCH_API__SEARCH_RATE_PER_MINUTE": "1000000",
        "FACESEARCH_API__SEARCH_BURST": "100000",
    }
    cmd = [sys.executable, "-m", "facesearch.cli", "serve", "--home", str(home)]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def server_timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        out[name] = float(dur)
    return out


def http_run(url: str, key: str, clients: int, requests: int) -> dict[str, Any]:
    data = PROBE.read_bytes()
    latencies: list[float] = []
    stages: list[dict[str, float]] = []
    lock = threading.Lock()
    todo = iter(range(requests))

    def client() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
            while True:
                with lock:
                    if next(todo, None) is None:
                        return
                t = time.perf_counter()
                response = http.post(
                    f"{url}/v1/search",
                    files={"image": ("probe.jpg", data, "image/jpeg")},
                    data={"top_k": "20", "purpose": "benchmark", "case_ref": "BENCH-1"},
                )
                elapsed = (time.perf_counter() - t) * 1000
                assert response.status_code == 200, response.text
                with lock:
                    latencies.append(elapsed)
                    stages.append(server_timing(response.headers["server-timing"]))

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - started
    split = {k: round(statistics.median(s[k] for s in stages), 2) for k in stages[0]}
    return {
        "clients": clients,
        "requests": requests,
        "rps": round(requests / wall, 2),
        "latency_ms": percentiles(latencies),
        "server_split_ms_median": split,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--requests", type=int, default=24, help="per run at 1 client")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    report: dict[str, Any] = {"probe": PROBE.name, "cpus": os.cpu_count(), "runs": []}
    for faces in args.faces:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            t = time.perf_counter()
            build_home(home, faces)
            build_s = round(time.perf_counter() - t, 1)
            store = SqliteAccountStore(home / "accounts.sqlite")
            _, key = store.create_key("bench", "search")
            store.close()
            proc = start_server(home, args.port)
            try:
                url = f"http://127.0.0.1:{args.port}"
                http_run(url, key, 1, 2)  # warm the server's models
                compared = paired(home, url, key, args.requests)
                runs = [
                    http_run(url, key, c, args.requests * n) for c, n in ((1, 1), (4, 2), (16, 4))
                ]
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            report["runs"].append(
                {
                    "stored_faces": faces,
                    "build_seconds": build_s,
                    "http_vs_python_api": compared,
                    "http": runs,
                }
            )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
