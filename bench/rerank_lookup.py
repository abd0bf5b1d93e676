"""What does the exact re-rank's read from the catalog cost as the catalog grows?

The approximate index answers with candidate face ids; ``ExactRerankIndex`` then reads
their float32 embeddings from the SQLite catalog (``SqliteCatalog.embeddings_found``)
and scores them again. ``bench/ann_search.py`` reads them from a memory-mapped array
instead, so this script measures what the catalog adds: the time to fetch the 70
candidates a search for 20 results re-ranks, for random ids, in a catalog of N faces
(filled with ``bulk_add_embeddings``, one synthetic image a face). The baseline, in the
same run, is the same fetch from an in-memory float32 array.

    .venv/bin/python bench/rerank_lookup.py --sizes 1000000,10000000

Prints one JSON object per size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann_synthetic as syn
from facesearch.catalog.sqlite import SqliteCatalog
from facesearch.domain import Source

SEED = 5
CANDIDATES = 70  # 60 rows + index.rerank_margin 10: what a 20-result search reads
REPEATS = 300


def fill(catalog: SqliteCatalog, n: int) -> float:
    catalog.add_source(
        Source(
            name="bench",
            lawful_basis="legitimate_interests",
            special_category_condition="archiving_research",
            retention_days=30,
        )
    )
    t0 = time.perf_counter()
    for start, vecs in syn.chunks(SEED, n):
        catalog.bulk_add_embeddings("bench", vecs)
        print(f"\r{start + len(vecs):,} faces", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return time.perf_counter() - t0


def run(n: int, work: Path, keep: bool) -> dict[str, Any]:
    path = work / f"catalog-{n}.sqlite"
    fill_s = None
    if not (keep and path.exists()):
        shutil.rmtree(work, ignore_errors=True)
        catalog = SqliteCatalog(path)
        fill_s = round(fill(catalog, n), 1)
        catalog.close()
    catalog = SqliteCatalog(path)  # reopened, as a server opens its home
    assert catalog.face_state()[0] == n
    gallery = np.concatenate([v for _, v in syn.chunks(SEED, min(n, 1_000_000))])
    rng = np.random.default_rng(SEED)
    catalog_ms, array_ms = [], []
    for _ in range(REPEATS):
        ids = rng.choice(n, CANDIDATES, replace=False) + 1  # catalog ids start at 1
        t0 = time.perf_counter()
        found, vecs = catalog.embeddings_found(ids.tolist())
        catalog_ms.append((time.perf_counter() - t0) * 1e3)
        assert len(found) == CANDIDATES and vecs.shape == (CANDIDATES, syn.DIM)
        rows = (ids - 1) % len(gallery)
        t0 = time.perf_counter()
        np.ascontiguousarray(gallery[np.sort(rows)])
        array_ms.append((time.perf_counter() - t0) * 1e3)
    catalog.close()
    size_mb = sum(p.stat().st_size for p in work.iterdir()) / 2**20
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    p50_catalog, p50_array = float(np.median(catalog_ms)), float(np.median(array_ms))
    return {
        "faces": n,
        "fill_s": fill_s,
        "catalog_mb": round(size_mb, 1),
        "candidates": CANDIDATES,
        "catalog_p50_ms": round(p50_catalog, 3),
        "catalog_p99_ms": round(float(np.percentile(catalog_ms, 99)), 3),
        "array_p50_ms": round(p50_array, 3),
        "catalog_minus_array_ms": round(p50_catalog - p50_array, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000")
    parser.add_argument(
        "--workdir", default=str(Path(tempfile.gettempdir()) / "facesearch-rerank-lookup")
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the catalogs, and reuse one already there"
    )
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        print(json.dumps(run(n, Path(args.workdir) / str(n), args.keep)), flush=True)


if __name__ == "__main__":
    main()
