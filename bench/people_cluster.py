"""How well and how fast does grouping faces into persons work?

Quality: the dev set's labelled photos (every LFW photo: 51 people with 2+ photos and
869 people with one, who must stay apart; and the labelled celebrity photos), one face
each (the largest), embedded by the configured model through ``FaceSearch.probe`` and
cached in ``bench/.cache/people_dev.npz``. For each threshold: pairwise precision and
recall and BCubed F1 of ``people.cluster.group_faces`` (k-NN graph, strongest edge first,
constraints), against plain connected components of the same graph (the baseline: every
edge over the threshold joins, weakest links included), measured in the same run.

Time: seeded synthetic embeddings (``ann_synthetic``: five faces per identity,
look-alike groups) at each size: seconds for the k-NN graph (faiss, exact up to
``EXACT_UP_TO`` faces, an inverted file beyond, with its recall against the exact graph
on a seeded sample), for the joining, and in all, with the pairwise precision/recall
against the identities; the baseline is connected components over the same edges. The
incremental step (1% new faces grouped into the existing persons, their neighbours asked
of an index that already holds the rest) is timed against the step as it was (a k-NN
index rebuilt over every face), in the same run.

    .venv/bin/python bench/people_cluster.py --dev --thresholds 0.93,0.94,0.95,0.96
    .venv/bin/python bench/people_cluster.py --sizes 100000,1000000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ann_synthetic import FACES_PER_ID, chunk, n_groups  # noqa: E402
from facesearch.people import cluster  # noqa: E402

DEV = Path(os.environ.get("FACESEARCH_DEV", HERE.parent.parent / "shared" / "data" / "faces-dev"))
CACHE = HERE / ".cache" / "people_dev.npz"
SOURCES = ("lfw/", "glint360k_celebs/")


def scores(given: list[int | None], truth: list[int]) -> dict[str, float]:
    """Pairwise precision/recall and BCubed F1 of a clustering (ungrouped: None, each
    its own cluster) against labels."""
    pred = [("person", p) if p is not None else ("alone", i) for i, p in enumerate(given)]
    cells = Counter(zip(pred, truth, strict=True))
    by_pred, by_true = Counter(pred), Counter(truth)

    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    same_both = sum(pairs(n) for n in cells.values())
    same_pred = sum(pairs(n) for n in by_pred.values())
    same_true = sum(pairs(n) for n in by_true.values())
    precision = same_both / same_pred if same_pred else 1.0
    recall = same_both / same_true if same_true else 1.0
    b_p = sum(n * n / by_pred[p] for (p, _), n in cells.items()) / len(pred)
    b_r = sum(n * n / by_true[t] for (_, t), n in cells.items()) / len(pred)
    return {
        "pairwise_precision": round(precision, 4),
        "pairwise_recall": round(recall, 4),
        "bcubed_precision": round(b_p, 4),
        "bcubed_recall": round(b_r, 4),
        "bcubed_f1": round(2 * b_p * b_r / (b_p + b_r), 4),
    }


def components(
    n: int, vectors: npt.NDArray[np.float32], k: int, threshold: float
) -> tuple[list[int | None], float]:
    """The baseline: connected components of the threshold graph, no constraints."""
    started = time.perf_counter()
    parent = np.arange(n, dtype=np.int64)
    for a, b in cluster._edges(vectors, np.arange(n, dtype=np.int64), k, threshold):
        ra, rb = cluster._root(parent, a), cluster._root(parent, b)
        if ra != rb:
            parent[rb] = ra
    labels: list[int | None] = [cluster._root(parent, i) for i in range(n)]
    return labels, time.perf_counter() - started


def as_labels(result: cluster.Grouping, face_ids: npt.NDArray[np.int64]) -> list[int | None]:
    return [result.person_of.get(int(f)) for f in face_ids]


# -- the dev set ------------------------------------------------------------------------
def dev_embeddings() -> tuple[npt.NDArray[np.float32], list[str], dict[str, Any]]:
    if CACHE.exists():
        data = np.load(CACHE, allow_pickle=False)
        return data["vectors"], [str(x) for x in data["labels"]], json.loads(str(data["info"]))
    from facesearch import FaceSearch, Settings
    from facesearch.errors import InvalidInput

    with open(DEV / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["path"].startswith(SOURCES)]
    vectors, labels, no_face = [], [], 0
    home = HERE / ".cache" / "people-home"
    with FaceSearch(Settings(home=home, workers=1)) as engine:
        for n, row in enumerate(rows, start=1):
            try:
                probe = engine.probe(DEV / row["path"])
            except InvalidInput:
                probe = None
            if probe is None or not probe.faces:
                no_face += 1
                continue
            vectors.append(probe.embeddings[0])
            labels.append(row["identity"])
            if n % 100 == 0:
                print(f"embedded {n}/{len(rows)}", file=sys.stderr)
        model = engine.model.key
    info = {"photos": len(rows), "without_face": no_face, "model": model}
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    array = np.asarray(vectors, dtype=np.float32)
    np.savez(CACHE, vectors=array, labels=np.array(labels), info=json.dumps(info))
    return array, labels, info


def dev(thresholds: list[float], k: int, min_faces: int) -> dict[str, Any]:
    vectors, labels, info = dev_embeddings()
    names = {name: i for i, name in enumerate(sorted(set(labels)))}
    truth = [names[x] for x in labels]
    n = len(labels)
    ids = np.arange(1, n + 1, dtype=np.int64)
    per_id = Counter(labels)
    out: dict[str, Any] = {
        **info,
        "faces": n,
        "identities": len(per_id),
        "identities_with_2_or_more": sum(1 for v in per_id.values() if v >= 2),
        "k": k,
        "min_faces": min_faces,
        "runs": [],
    }
    for t in thresholds:
        started = time.perf_counter()
        result = cluster.group_faces(
            ids, ids, vectors, {}, {}, threshold=t, k=k, min_faces=min_faces
        )
        seconds = time.perf_counter() - started
        ours = scores(as_labels(result, ids), truth)
        base_labels, base_seconds = components(n, vectors, k, t)
        base = scores(base_labels, truth)
        out["runs"].append(
            {
                "threshold": t,
                "persons": result.new_persons,
                "faces_grouped": len(result.person_of),
                "grouping": ours,
                "connected_components": base,
                "precision_gain": round(ours["pairwise_precision"] - base["pairwise_precision"], 4),
                "seconds": round(seconds, 3),
                "baseline_seconds": round(base_seconds, 3),
            }
        )
    return out


# -- time at scale ----------------------------------------------------------------------
def synthetic(n: int, seed: int = 7) -> npt.NDArray[np.float32]:
    groups = n_groups(n)
    parts = [
        chunk(seed, i, groups, min(100_000, n - i * 100_000))
        for i in range((n + 99_999) // 100_000)
    ]
    return np.concatenate(parts)


def graph_recall(vectors: npt.NDArray[np.float32], k: int, sample: int) -> float:
    """Of the exact ``k`` nearest neighbours of ``sample`` seeded faces, the share the
    grouping's k-NN index (IVF above ``EXACT_UP_TO``) finds too."""
    rows = np.sort(np.random.default_rng(1).choice(len(vectors), sample, replace=False))
    queries = np.ascontiguousarray(vectors[rows])
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, k + 1)
    del exact
    _, found = cluster.knn_index(vectors).search(queries, k + 1)
    hits = sum(len(set(t.tolist()) & set(f.tolist())) for t, f in zip(truth, found, strict=True))
    return round(hits / truth.size, 4)


def incremental(
    vectors: npt.NDArray[np.float32],
    ids: npt.NDArray[np.int64],
    grouped: dict[int, int],
    threshold: float,
    k: int,
) -> dict[str, Any]:
    """The last 1% of the faces arrive after the rest was grouped (as ``grouped``: the
    full run's persons of the first 99%). Ours: the engine's index (here the grouping's
    own faiss index, built before: ingest keeps it) takes the new vectors and is asked for
    their neighbours (``group_new_faces``). The baseline, in the same run: the step as it
    was, ``group_faces(full=False)``, which rebuilt the k-NN index over every face."""
    n = len(ids)
    cut = n - n // 100
    current = {f: p for f, p in grouped.items() if f <= cut}
    index = cluster.knn_index(vectors[:cut])
    started = time.perf_counter()
    index.add(np.ascontiguousarray(vectors[cut:]))
    added = time.perf_counter() - started

    def nearest(
        q: npt.NDArray[np.float32], kk: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        sims, rows = index.search(q, kk)
        return np.where(rows >= 0, rows + 1, -1).astype(np.int64), sims

    fresh = np.array([f for f in ids.tolist() if f not in current], dtype=np.int64)
    started = time.perf_counter()
    ours = cluster.group_new_faces(
        fresh,
        fresh,
        vectors[fresh - 1],
        current,
        nearest,
        lambda fs: {int(f): int(f) for f in fs},
        threshold=threshold,
        k=k,
    )
    seconds = time.perf_counter() - started
    index.reset()  # frees its vectors before the baseline builds its own
    started = time.perf_counter()
    before = cluster.group_faces(ids, ids, vectors, current, {}, threshold=threshold, k=k)
    rebuild = time.perf_counter() - started
    same = sum(ours.person_of.get(f) == before.person_of.get(f) for f in fresh.tolist())
    return {
        "new_faces": n - cut,
        "faces_searched": len(fresh),
        "index_add_seconds": round(added, 3),
        "incremental_1pct_seconds": round(seconds, 3),
        "rebuild_baseline_seconds": round(rebuild, 2),
        "ratio_to_baseline": round(seconds / rebuild, 4),
        "same_person_as_baseline": round(same / max(1, len(fresh)), 4),
    }


def timed(
    sizes: list[int], threshold: float, k: int, baseline_up_to: int, sample: int
) -> list[dict[str, Any]]:
    """Above ``baseline_up_to`` faces the connected-components baseline of the full run
    is left out (on a small machine it would cost as much again); the incremental step
    and its baseline are measured at every size."""
    runs = []
    for n in sizes:
        vectors = synthetic(n)
        truth = (np.arange(n) // FACES_PER_ID).tolist()
        ids = np.arange(1, n + 1, dtype=np.int64)
        started = time.perf_counter()
        result = cluster.group_faces(ids, ids, vectors, {}, {}, threshold=threshold, k=k)
        total = time.perf_counter() - started
        knn = result.knn_seconds
        quality = scores(as_labels(result, ids), truth)
        exact = n <= cluster.EXACT_UP_TO
        lists = n // cluster.IVF_LIST_SIZE
        row: dict[str, Any] = {
            "faces": n,
            "knn": "exact (faiss flat)"
            if exact
            else f"faiss IVF-flat ({lists} lists, {cluster.IVF_PROBE} probed)",
            "knn_seconds": round(knn, 2),
            "group_seconds": round(total, 2),
            "join_seconds": round(total - knn, 2),
            "persons": result.new_persons,
            "grouping": quality,
        }
        if not exact:
            row["graph_recall_vs_exact"] = graph_recall(vectors, k, sample)
        runs.append(row)
        print(json.dumps(row), file=sys.stderr)
        made: dict[int, int] = {}
        grouped = {f: made.setdefault(p, len(made) + 1) for f, p in result.person_of.items()}
        row["incremental"] = incremental(vectors, ids, grouped, threshold, k)
        print(json.dumps(row["incremental"]), file=sys.stderr)
        if n > baseline_up_to:
            continue
        base_labels, base_seconds = components(n, vectors, k, threshold)
        row.update(
            {
                "connected_components_seconds": round(base_seconds, 2),
                "ratio_to_baseline": round(total / base_seconds, 3),
                "connected_components": scores(base_labels, truth),
            }
        )
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", action="store_true", help="quality on the dev set")
    parser.add_argument("--thresholds", default="0.92,0.93,0.94,0.95,0.96")
    parser.add_argument("--sizes", default="", help="faces to time, e.g. 100000,1000000")
    parser.add_argument(
        "--threshold", type=float, default=0.8, help="for --sizes (synthetic: same person ~0.9)"
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--baseline-up-to", type=int, default=200_000, help="larger sizes: grouping only"
    )
    parser.add_argument("--min-faces", type=int, default=2)
    parser.add_argument(
        "--recall-sample", type=int, default=2000, help="faces whose k-NN recall is measured"
    )
    args = parser.parse_args()
    report: dict[str, Any] = {"cpus": os.cpu_count()}
    if args.dev:
        report["dev"] = dev([float(t) for t in args.thresholds.split(",")], args.k, args.min_faces)
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
        report["time"] = timed(
            sizes, args.threshold, args.k, args.baseline_up_to, args.recall_sample
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
