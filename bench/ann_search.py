"""How do approximate indexes compare with exact search as a gallery grows to 10M faces?

For each size, on the same seeded clustered embeddings and the same queries, with exact
ground truth: the exact numpy scan (the FlatFileIndex computation, the baseline), the
faiss IVF-SQ8 index facesearch uses (FaissIvfIndex behind ExactRerankIndex, so its
figures include the exact re-rank), and usearch HNSW with float16 vectors (re-ranked the
same way). Reports build time, size on disk, resident memory of a process that loads
the index, recall@10/@100, single-query p50/p99, batch queries/s, an nprobe sweep,
deleting 1% then compacting, and filtered search.

    .venv/bin/python bench/ann_search.py --sizes 100000,1000000
    .venv/bin/python bench/ann_search.py --sizes 10000000 --libraries ivf

Prints one JSON object per size (and appends it to --out when given).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann_synthetic as syn
from facesearch.index.local.faiss_ivf import FaissIvfIndex, default_nlist
from facesearch.index.local.flat import top_k
from facesearch.index.local.rerank import ExactRerankIndex

SEED = 5
N_QUERIES = 200
K_SHOWN = 60  # the engine asks for top_k (20) x OVERFETCH (3) rows


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1e3, 3)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rss_of_loader(code: str) -> int:
    """Resident bytes of a fresh Python process after it runs ``code`` (loads an index)."""
    script = f"import psutil, sys\n{code}\nprint(psutil.Process().memory_info().rss)"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[-1])


def timed_queries(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> Any:
    found, lat = [], []
    for q in queries:
        t0 = time.perf_counter()
        found.append(search(q[None, :])[0])
        lat.append(time.perf_counter() - t0)
    return np.array(found), lat


def measure(
    name: str,
    search: Callable[[np.ndarray, int], np.ndarray],
    queries: np.ndarray,
    truth: np.ndarray,
    n_latency: int,
) -> dict[str, Any]:
    found, lat = timed_queries(lambda q: search(q, K_SHOWN), queries[:n_latency])
    wide = search(queries, 100)
    t0 = time.perf_counter()
    search(queries, 100)
    batch_s = time.perf_counter() - t0
    return {
        "index": name,
        "recall@10": round(syn.recall(found, truth[:n_latency], 10), 4),
        "recall@100": round(syn.recall(wide, truth, 100), 4),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "batch_qps": round(len(queries) / batch_s, 1),
    }


def exact_search(gallery: np.ndarray) -> Callable[[np.ndarray, int], np.ndarray]:
    ids = np.arange(len(gallery), dtype=np.int64)

    def search(q: np.ndarray, k: int) -> np.ndarray:
        best = None
        for start in range(0, len(gallery), 2_000_000):  # bounded temporaries at 10M
            i, s = top_k(q @ gallery[start : start + 2_000_000].T, ids[start:], k)
            best = (i, s) if best is None else _merge(best, (i, s), k)
        assert best is not None
        return best[0]

    return search


def _merge(a: Any, b: Any, k: int) -> Any:
    ids = np.concatenate([a[0], b[0]], axis=1)
    sims = np.concatenate([a[1], b[1]], axis=1)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(sims, order, axis=1)


def lookup_in(gallery: np.ndarray) -> Callable[[Sequence[int]], Any]:
    def lookup(ids: Sequence[int]) -> Any:
        arr = np.asarray(ids, dtype=np.int64)
        return arr, np.asarray(gallery[arr])

    return lookup


def bench_ivf(
    gallery: np.ndarray, queries: np.ndarray, truth: np.ndarray, work: Path, args: Any
) -> dict[str, Any]:
    n = len(gallery)
    directory = work / "ivf"
    shutil.rmtree(directory, ignore_errors=True)
    t0 = time.perf_counter()
    ivf = FaissIvfIndex(directory, expected=n, nprobe=args.nprobe)
    if args.nlist:
        ivf.nlist = args.nlist
    ivf.reset("bench")
    rng = np.random.default_rng(SEED)
    sample = np.asarray(gallery[np.sort(rng.choice(n, min(n, ivf.train_size), replace=False))])
    ivf.train(sample)
    train_s = time.perf_counter() - t0
    for start in range(0, n, syn.CHUNK):
        stop = min(n, start + syn.CHUNK)
        ivf.add_bulk(np.arange(start, stop, dtype=np.int64), np.asarray(gallery[start:stop]))
    ivf.compact()
    build_s = time.perf_counter() - t0
    log(f"built in {build_s:.0f} s (nlist {ivf.nlist})")
    index = ExactRerankIndex(ivf, lookup_in(gallery))
    out: dict[str, Any] = {
        "build_s": round(build_s, 1),
        "train_s": round(train_s, 1),
        "nlist": ivf.nlist,
        "nprobe": ivf.nprobe,
        "disk_mb": round(dir_bytes(directory) / 2**20, 1),
        "rss_loaded_mb": round(
            rss_of_loader(
                "from pathlib import Path\n"
                "from facesearch.index.local.faiss_ivf import FaissIvfIndex\n"
                f"ix = FaissIvfIndex(Path({str(directory)!r}))"
            )
            / 2**20,
            1,
        ),
    }
    out.update(measure("faiss-ivf-sq8", lambda q, k: index.search(q, k)[0], queries, truth, 200))
    sweep = []
    base_nprobe = ivf.nprobe
    for nprobe in args.sweep:
        ivf.nprobe = nprobe
        found, lat = timed_queries(lambda q: index.search(q, K_SHOWN)[0], queries)
        sweep.append(
            {
                "nprobe": nprobe,
                "recall@10": round(syn.recall(found, truth, 10), 4),
                "p50_ms": pct(lat, 50),
            }
        )
    ivf.nprobe = base_nprobe
    out["nprobe_sweep"] = sweep
    log("filtered search")
    out["filtered"] = bench_filtered(index, gallery, queries)
    log("delete 1% and compact")
    out["delete_1pct"] = bench_delete(ivf, index, gallery, queries, truth, directory)
    return out


def bench_filtered(
    index: ExactRerankIndex, gallery: np.ndarray, queries: np.ndarray, alive: Any = None
) -> Any:
    """Search restricted to some 'sources': whole identities, 10% and 1% of the gallery
    (of the ``alive`` faces, when some were deleted)."""
    out = []
    n = len(gallery)
    for share in (0.1, 0.01):
        person = np.arange(n) // syn.FACES_PER_ID
        allowed = np.flatnonzero((person * 2654435761 % 1000) < share * 1000).astype(np.int64)
        if alive is not None:
            allowed = np.intersect1d(allowed, alive)
        # Read-only, as the catalog hands a source's ids to every search until it changes
        # (the index then keeps the bitmap it built for them).
        allowed.flags.writeable = False
        truth = exact_search(np.asarray(gallery[allowed]))(queries, 10)
        truth = allowed[truth]
        found, lat = timed_queries(lambda q, a=allowed: index.search(q, 10, a)[0], queries[:100])
        out.append(
            {
                "share": share,
                "allowed": len(allowed),
                "path": "exact over catalog" if len(allowed) <= index.exact_filter_max else "ivf",
                "recall@10": round(syn.recall(found, truth[:100], 10), 4),
                "p50_ms": pct(lat, 50),
            }
        )
    return out


def bench_delete(
    ivf: FaissIvfIndex,
    index: ExactRerankIndex,
    gallery: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    directory: Path,
) -> Any:
    n = len(gallery)
    rng = np.random.default_rng(SEED + 1)
    # Half of the victims are true neighbours of the queries, so recall after the delete
    # checks that erased faces really stopped coming back.
    near = np.unique(truth[:, :5].reshape(-1))
    victims = np.unique(
        np.concatenate([near[: n // 200], rng.choice(n, n // 100 - min(len(near), n // 200))])
    )
    ivf.compact_fraction = 1.0  # time remove and compact separately
    t0 = time.perf_counter()
    ivf.remove(victims.tolist())
    remove_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ivf.compact()
    compact_s = time.perf_counter() - t0
    found, _ = timed_queries(lambda q: index.search(q, 10)[0], queries)
    gone = np.isin(found, victims).sum()
    # Exact top-10 among the survivors, without copying the gallery: take a deeper exact
    # list and drop the removed faces (at most 5 + a few random ones per query).
    deep = syn.exact_top(gallery, queries, 60)
    new_truth = np.array([row[~np.isin(row, victims)][:10] for row in deep])
    return {
        "removed": len(victims),
        "remove_s": round(remove_s, 2),
        "compact_s": round(compact_s, 2),
        "recall@10_after": round(syn.recall(found, new_truth, 10), 4),
        "removed_in_results": int(gone),
        "disk_mb_after": round(dir_bytes(directory) / 2**20, 1),
    }


def bench_usearch(
    gallery: np.ndarray, queries: np.ndarray, truth: np.ndarray, work: Path
) -> dict[str, Any]:
    from usearch.index import Index

    n = len(gallery)
    path = work / "usearch.f16"
    t0 = time.perf_counter()
    hnsw = Index(ndim=syn.DIM, metric="ip", dtype="f16", connectivity=16, expansion_add=64)
    hnsw.expansion_search = 64
    for start in range(0, n, syn.CHUNK):
        stop = min(n, start + syn.CHUNK)
        hnsw.add(np.arange(start, stop, dtype=np.int64), np.asarray(gallery[start:stop]))
    hnsw.save(str(path))
    build_s = time.perf_counter() - t0
    lookup = lookup_in(gallery)

    def search(q: np.ndarray, k: int) -> np.ndarray:
        res = hnsw.search(q, max(2 * k, 100))
        keys = np.atleast_2d(res.keys).astype(np.int64)
        out = np.full((len(q), k), -1, dtype=np.int64)
        for r in range(len(q)):
            ids, vecs = lookup(keys[r].tolist())
            out[r] = top_k(q[r : r + 1] @ vecs.T, ids, k)[0][0]
        return out

    out: dict[str, Any] = {
        "build_s": round(build_s, 1),
        "disk_mb": round(path.stat().st_size / 2**20, 1),
        "rss_loaded_mb": round(
            rss_of_loader(
                f"from usearch.index import Index\nix = Index.restore({str(path)!r}, view=True)"
            )
            / 2**20,
            1,
        ),
        "note": "usearch marks deletions only; erasure needs a rebuild",
    }
    out.update(measure("usearch-hnsw-f16", search, queries, truth, 200))
    return out


def run_size(n: int, args: Any) -> dict[str, Any]:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log(f"{n} faces: gallery and ground truth")
    gallery = syn.gallery_file(SEED, n, work)
    queries = syn.queries(SEED, n, N_QUERIES)
    truth = syn.exact_top(gallery, queries, 100)
    prep_s = time.perf_counter() - t0
    result: dict[str, Any] = {"faces": n, "queries": N_QUERIES, "prep_s": round(prep_s, 1)}
    in_ram = np.asarray(gallery)  # exact search reads every vector: give it RAM
    n_latency = 50 if n > 2_000_000 else 200
    log("exact baseline")
    exact = measure("exact-numpy", exact_search(in_ram), queries, truth, n_latency)
    exact["memory_mb"] = round(in_ram.nbytes / 2**20, 1)
    result["exact"] = exact
    if "ivf" in args.libraries:
        log("faiss ivf-sq8")
        result["ivf"] = bench_ivf(in_ram, queries, truth, work, args)
        result["ivf"]["p50_vs_exact"] = round(result["ivf"]["p50_ms"] / exact["p50_ms"], 4)
    if "usearch" in args.libraries:
        log("usearch hnsw-f16")
        result["usearch"] = bench_usearch(in_ram, queries, truth, work)
        result["usearch"]["p50_vs_exact"] = round(result["usearch"]["p50_ms"] / exact["p50_ms"], 4)
    result["peak_rss_mb"] = round(psutil.Process().memory_info().rss / 2**20, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--libraries", default="ivf,usearch")
    parser.add_argument("--nlist", type=int, default=0, help="override default_nlist")
    parser.add_argument("--nprobe", type=int, default=0, help="0: the index's default")
    parser.add_argument("--sweep", default="8,16,32,64,128")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "facesearch-ann"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.sweep = [int(x) for x in args.sweep.split(",") if x]
    args.libraries = args.libraries.split(",")
    for n in (int(s) for s in args.sizes.split(",")):
        result = run_size(n, args)
        result["default_nlist"] = default_nlist(n)
        line = json.dumps(result)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(line + "\n")


if __name__ == "__main__":
    main()
