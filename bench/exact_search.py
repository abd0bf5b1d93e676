"""How fast is exact search in the default index at 10k, 100k and 1M stored faces?

Synthetic, seeded unit vectors (128-d; latency of exact search does not depend on how
the vectors are spread) are written to a FlatFileIndex in a temporary folder, reopened
from disk, and queried one probe at a time for the engine's candidate count (top 20
results x overfetch 3 = 60). The baseline, measured in the same run on the same
vectors, is plain numpy brute force (one matrix-vector product, argpartition, sort).
It also times a search restricted to half the faces (what ``--source`` does) and checks
that the index returns exactly the baseline's ids.

    .venv/bin/python bench/exact_search.py [--sizes 10000,100000,1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.engine import OVERFETCH
from facesearch.index.local.flat import FlatFileIndex

DIM = 128
K = 20 * OVERFETCH
SEED = 7


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):  # chunks keep the float64 temporaries small
        block = rng.standard_normal((min(100_000, n - start), DIM))
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def numpy_top_k(vectors: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    sims = vectors @ query
    part = np.argpartition(-sims, k - 1)[:k]
    return part[np.argsort(-sims[part], kind="stable")]


def latencies(fn: Callable[[np.ndarray], Any], queries: np.ndarray) -> dict[str, float]:
    fn(queries[0])  # warm-up
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    ms = np.asarray(times) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def run_size(n: int, n_queries: int, rng: np.random.Generator) -> dict[str, Any]:
    vectors = unit_rows(rng, n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    queries = unit_rows(rng, n_queries)
    with tempfile.TemporaryDirectory() as tmp:
        FlatFileIndex(Path(tmp)).add(ids, vectors)
        index = FlatFileIndex(Path(tmp))  # reopened: searched as a user's home would be
        baseline = latencies(lambda q: numpy_top_k(vectors, q, K), queries)
        flat = latencies(lambda q: index.search(q, K), queries)
        allowed = ids[::2].copy()
        half = vectors[::2].copy()
        baseline_half = latencies(lambda q: numpy_top_k(half, q, K), queries)
        flat_half = latencies(lambda q: index.search(q, K, allowed), queries)
        same = all(
            np.array_equal(index.search(q, K)[0][0], ids[numpy_top_k(vectors, q, K)])
            for q in queries[:20]
        )
    return {
        "faces": n,
        "queries": n_queries,
        "k": K,
        "numpy_baseline": baseline,
        "flat_index": flat,
        "ratio_p50": round(flat["p50_ms"] / baseline["p50_ms"], 2),
        "ratio_p99": round(flat["p99_ms"] / baseline["p99_ms"], 2),
        "filtered_half": {
            "numpy_baseline_on_the_half": baseline_half,
            "flat_index_with_allowed_ids": flat_half,
            "ratio_p50": round(flat_half["p50_ms"] / baseline_half["p50_ms"], 2),
        },
        "same_ids_as_baseline": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    results = [run_size(int(n), args.queries, rng) for n in args.sizes.split(",")]
    print(json.dumps({"dim": DIM, "results": results}, indent=1))


if __name__ == "__main__":
    main()
