"""How does search through Milvus compare with the local IVF index, at 100k (and 1M) faces?

Same seeded clustered embeddings, same queries, exact ground truth. Baseline: the local
faiss IVF-SQ8 index (FaissIvfIndex behind ExactRerankIndex, as the engine uses it), in
this process. Against it, MilvusIndex on a real Milvus 2.3.5 server started here by
scripts/engines/milvus.py: IVF_SQ8 re-ranked exactly from the gallery (as the engine
does from the catalog), IVF_SQ8 on its own scores, and FLAT (Milvus's exact scan).
Reports single-query p50/p99 (k = 60, what the engine asks for), recall@10 against exact
search, load time, and the latency ratio against the local index.

    .venv/bin/python bench/milvus_search.py --sizes 100000
    .venv/bin/python bench/milvus_search.py --sizes 100000,1000000 --out bench/results/milvus.jsonl

Needs scripts/install-milvus.sh (the server) and pymilvus. Prints one JSON object per size.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann_synthetic as syn
from facesearch.config import IndexSettings
from facesearch.index.local.faiss_ivf import FaissIvfIndex
from facesearch.index.local.rerank import ExactRerankIndex
from facesearch.index.milvus import MilvusIndex

HERE = Path(__file__).resolve().parent
SEED = 5
K_SHOWN = 60  # the engine asks for top_k (20) x OVERFETCH (3) rows


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def engine_script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "milvus_engine", HERE.parent / "scripts" / "engines" / "milvus.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pct(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1e3, 2)


def lookup_in(gallery: np.ndarray) -> Callable[[Sequence[int]], Any]:
    def lookup(ids: Sequence[int]) -> Any:
        arr = np.asarray(ids, dtype=np.int64)
        return arr, np.asarray(gallery[arr])

    return lookup


def measure(name: str, index: Any, queries: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    index.search(queries[:5], K_SHOWN)  # warm
    found, lat = [], []
    for q in queries:
        t0 = time.perf_counter()
        ids, _ = index.search(q[None, :], K_SHOWN)
        lat.append(time.perf_counter() - t0)
        found.append(ids[0])
    return {
        "index": name,
        "recall@10": round(syn.recall(np.array(found), truth, 10), 4),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
    }


def local_ivf(gallery: np.ndarray, work: Path) -> tuple[Any, float]:
    n = len(gallery)
    t0 = time.perf_counter()
    ivf = FaissIvfIndex(work / "ivf", expected=n)
    ivf.reset("bench")
    rng = np.random.default_rng(SEED)
    ivf.train(np.asarray(gallery[np.sort(rng.choice(n, min(n, ivf.train_size), replace=False))]))
    for start in range(0, n, syn.CHUNK):
        stop = min(n, start + syn.CHUNK)
        ivf.add_bulk(np.arange(start, stop, dtype=np.int64), np.asarray(gallery[start:stop]))
    ivf.compact()
    return ExactRerankIndex(ivf, lookup_in(gallery)), time.perf_counter() - t0


def milvus_index(
    url: str, gallery: np.ndarray, rerank: bool, fill: bool
) -> tuple[MilvusIndex, float]:
    index = MilvusIndex(url, IndexSettings(), lookup=lookup_in(gallery) if rerank else None)
    t0 = time.perf_counter()
    if fill:
        index.reset("bench")
        for start in range(0, len(gallery), 10_000):
            stop = min(len(gallery), start + 10_000)
            index.add(np.arange(start, stop, dtype=np.int64), np.asarray(gallery[start:stop]))
        client = index.client
        client.flush(index.name)
        # Milvus builds its index per sealed segment, after the flush: wait for it.
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            info = client.describe_index(index.name, "vector")
            if int(info.get("pending_index_rows", 0)) == 0 and int(
                info.get("indexed_rows", 0)
            ) >= len(gallery):
                break
            time.sleep(1)
        client.release_collection(index.name)
        client.load_collection(index.name)
    return index, time.perf_counter() - t0


def run(n: int, n_queries: int, server: Any, folder: Path, work: Path) -> dict[str, Any]:
    gallery = syn.gallery_file(SEED, n, work)
    queries = syn.queries(SEED, n, n_queries)
    truth = syn.exact_top(gallery, queries, 10)
    log(f"{n:,} faces: local IVF")
    local, local_s = local_ivf(gallery, work)
    baseline = measure("local faiss IVF-SQ8 + re-rank", local, queries, truth)
    baseline["build_s"] = round(local_s, 1)
    nlist = 2 ** round(math.log2(4 * math.sqrt(n)))  # Milvus's guidance: about 4 sqrt(n)
    nprobe = max(16, nlist // 32)
    rows = [baseline]
    base_url = server.url(folder, f"bench_{n}")
    for label, query, rerank, fill in (
        ("milvus IVF_SQ8 + re-rank", f"index=IVF_SQ8&nlist={nlist}&nprobe={nprobe}", True, True),
        (
            "milvus IVF_SQ8 (own scores)",
            f"index=IVF_SQ8&nlist={nlist}&nprobe={nprobe}",
            False,
            False,
        ),
    ):
        log(f"{n:,} faces: {label}")
        index, load_s = milvus_index(f"{base_url}?{query}", gallery, rerank, fill)
        row = measure(label, index, queries, truth)
        row["load_s"] = round(load_s, 1) if fill else None
        row["p50_ratio_vs_local"] = round(row["p50_ms"] / baseline["p50_ms"], 2)
        rows.append(row)
        index.close()
    log(f"{n:,} faces: milvus FLAT")
    flat, load_s = milvus_index(
        server.url(folder, f"flat_{n}") + "?index=FLAT", gallery, False, True
    )
    row = measure("milvus FLAT (exact scan)", flat, queries, truth)
    row["load_s"] = round(load_s, 1)
    row["p50_ratio_vs_local"] = round(row["p50_ms"] / baseline["p50_ms"], 2)
    rows.append(row)
    flat.reset(None)
    flat.close()
    return {
        "faces": n,
        "queries": n_queries,
        "k": K_SHOWN,
        "milvus": {"server": "2.3.5 standalone (PyPI milvus)", "nlist": nlist, "nprobe": nprobe},
        "results": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    server = engine_script()
    work = HERE / ".cache"
    work.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-milvus-"))
    log("starting Milvus")
    server.start(folder)
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            result = run(n, args.queries, server, folder, work)
            print(json.dumps(result))
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(result) + "\n")
    finally:
        server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
