"""Which nprobe and re-rank margin reach recall@10 >= 0.99, on an index already built?

Loads the IVF index that bench/ann_search.py left in --workdir (after its 1% delete),
recomputes exact ground truth over the surviving faces, and sweeps nprobe x re-rank
margin (candidates beyond k); then filtered search at the default nprobe, as the engine
runs it (the same read-only id array for every query of a filter).

    .venv/bin/python bench/ann_tuning.py --faces 10000000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann_synthetic as syn
from ann_search import bench_filtered
from facesearch.index.local.faiss_ivf import FaissIvfIndex, default_nprobe
from facesearch.index.local.rerank import ExactRerankIndex

SEED = 5  # as bench/ann_search.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=10_000_000)
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "facesearch-ann"))
    parser.add_argument("--nprobe", default="32,64,128,256")
    parser.add_argument("--margins", default="10,90")
    args = parser.parse_args()
    work = Path(args.workdir)
    gallery = syn.gallery_file(SEED, args.faces, work)
    queries = syn.queries(SEED, args.faces, 100)
    t0 = time.perf_counter()
    ivf = FaissIvfIndex(work / "ivf")
    load_s = time.perf_counter() - t0
    gone = np.setdiff1d(np.arange(args.faces), ivf.ids())
    deep = syn.exact_top(gallery, queries, 60)
    truth = np.array([row[~np.isin(row, gone)][:10] for row in deep])
    out = []
    for margin in (int(x) for x in args.margins.split(",")):
        index = ExactRerankIndex(
            ivf, lambda ids: (np.asarray(ids), gallery[np.asarray(ids)]), margin=margin
        )
        for nprobe in (int(x) for x in args.nprobe.split(",")):
            ivf.nprobe = nprobe
            found, lat = [], []
            for q in queries:
                t = time.perf_counter()
                found.append(index.search(q[None, :], 10)[0][0])
                lat.append(time.perf_counter() - t)
            out.append(
                {
                    "nprobe": nprobe,
                    "margin": margin,
                    "recall@10": round(syn.recall(np.array(found), truth, 10), 4),
                    "p50_ms": round(float(np.median(lat)) * 1e3, 3),
                }
            )
            print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    ivf.nprobe = default_nprobe(ivf.nlist)
    index = ExactRerankIndex(ivf, lambda ids: (np.asarray(ids), gallery[np.asarray(ids)]))
    filtered = bench_filtered(index, gallery, queries, alive=ivf.ids())
    print(
        json.dumps(
            {
                "faces": args.faces,
                "nlist": ivf.nlist,
                "load_s": round(load_s, 1),
                "sweep": out,
                "filtered_default_nprobe": filtered,
            }
        )
    )


if __name__ == "__main__":
    main()
