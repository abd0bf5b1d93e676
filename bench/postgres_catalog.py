"""What does a PostgreSQL catalog cost against the embedded SQLite one?

Three figures per catalog, in the same run, on the same seeded synthetic embeddings
(128-d, ``ann_synthetic``), SQLite being the baseline:

- ingest: images/s through ``add_image``, the write each ingested photo makes (one
  image, its face with its embedding, its copy, one transaction), for ``--ingest`` images;
- fill: faces/s through ``bulk_add_embeddings`` (batches of 100k) up to N faces;
- re-rank read: p50/p99 of ``embeddings_found`` for the 70 candidates a 20-result
  approximate search re-ranks, random ids, in a catalog of N faces, and the same read
  from an in-memory float32 array;
- erasure: one image removed, then ``scrub`` (what leaves no copy of it in the files).

PostgreSQL is Debian's, started by scripts/engines/postgres.py in a temporary folder on
the same disk, with fsync on and ``synchronous_commit=off``: the durability SQLite gives
in WAL mode with ``synchronous=NORMAL`` (a power cut may lose the last commits, never
corrupt). The client reaches it over TCP on 127.0.0.1.

    .venv/bin/python bench/postgres_catalog.py --sizes 100000,1000000 --ingest 5000

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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for scripts/
from scripts.engines import postgres as engine

import ann_synthetic as syn
from facesearch.catalog.ports import NewImage
from facesearch.catalog.postgres.catalog import PostgresCatalog
from facesearch.catalog.sqlite import SqliteCatalog
from facesearch.domain import BoundingBox, DetectedFace, Provenance, Source
from facesearch.governance.retention import stamp

SEED = 5
CANDIDATES = 70  # 60 rows + index.rerank_margin 10: what a 20-result search reads
REPEATS = 300
DURABLE = {"fsync": "on", "synchronous_commit": "off"}
Catalog = SqliteCatalog | PostgresCatalog


def source(name: str) -> Source:
    return Source(
        name=name,
        lawful_basis="legitimate_interests",
        special_category_condition="archiving_research",
        retention_days=30,
    )


def ingest(catalog: Catalog, vecs: np.ndarray) -> float:
    """Images/s through add_image, one face each."""
    face = DetectedFace(
        box=BoundingBox(10, 10, 110, 130),
        score=0.99,
        landmarks=((30.0, 40.0), (70.0, 40.0), (50.0, 60.0), (35.0, 80.0), (65.0, 80.0)),
        sharpness=12.0,
    )
    t0 = time.perf_counter()
    for i, vec in enumerate(vecs):
        image = NewImage(
            sha256=f"{i:064x}",
            width=640,
            height=480,
            format="jpeg",
            bytes=50_000,
            faces=[face],
            embeddings=vec[None, :],
        )
        catalog.add_image(image, stamp(Provenance("ingest", f"photos/{i}.jpg"), 30), None)
    return len(vecs) / (time.perf_counter() - t0)


def fill(catalog: Catalog, n: int) -> float:
    """Faces/s through bulk_add_embeddings."""
    t0 = time.perf_counter()
    for start, vecs in syn.chunks(SEED, n):
        catalog.bulk_add_embeddings("bench", vecs)
        print(f"\r{type(catalog).__name__}: {start + len(vecs):,} faces", end="", file=sys.stderr)
    print(file=sys.stderr)
    return n / (time.perf_counter() - t0)


def rerank_read(catalog: Catalog, n: int, first_id: int) -> dict[str, float]:
    rng = np.random.default_rng(SEED)
    ms = []
    for _ in range(REPEATS):
        ids = rng.choice(n, CANDIDATES, replace=False) + first_id
        t0 = time.perf_counter()
        found, vecs = catalog.embeddings_found(ids.tolist())
        ms.append((time.perf_counter() - t0) * 1e3)
        assert len(found) == CANDIDATES and vecs.shape == (CANDIDATES, syn.DIM)
    return {
        "p50_ms": round(float(np.median(ms)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def array_read(gallery: np.ndarray) -> float:
    rng = np.random.default_rng(SEED)
    ms = []
    for _ in range(REPEATS):
        rows = np.sort(rng.choice(len(gallery), CANDIDATES, replace=False))
        t0 = time.perf_counter()
        np.ascontiguousarray(gallery[rows])
        ms.append((time.perf_counter() - t0) * 1e3)
    return round(float(np.median(ms)), 4)


def measure(catalog: Catalog, n: int, n_ingest: int) -> dict[str, Any]:
    catalog.add_source(source("ingest"))
    catalog.add_source(source("bench"))
    rng = np.random.default_rng(SEED + 1)
    vecs = rng.standard_normal((n_ingest, syn.DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    out: dict[str, Any] = {"ingest_images_per_s": round(ingest(catalog, vecs), 1)}
    out["fill_faces_per_s"] = round(fill(catalog, n), 1)
    first = n_ingest + 1  # the bulk faces' ids follow the ingested ones
    out["rerank_read"] = rerank_read(catalog, n, first)
    assert catalog.face_state()[0] == n + n_ingest
    # An erasure of one image, then what leaves no copy of it (SQLite: VACUUM of the
    # file; PostgreSQL: VACUUM FULL of the tables and the WAL moved past them).
    t0 = time.perf_counter()
    catalog.remove_provenance(catalog.provenance_of(image_ids=[1]))
    catalog.scrub()
    out["erase_one_and_scrub_s"] = round(time.perf_counter() - t0, 2)
    return out


def run(n: int, n_ingest: int, work: Path) -> dict[str, Any]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sqlite = SqliteCatalog(work / "catalog.sqlite")
    try:
        base = measure(sqlite, n, n_ingest)
    finally:
        sqlite.close()
    sqlite_mb = sum(p.stat().st_size for p in work.glob("catalog.sqlite*")) / 2**20
    server = engine.start(work / "pg", settings=DURABLE)
    try:
        pg = PostgresCatalog(server.url())
        try:
            theirs = measure(pg, n, n_ingest)
            with pg.pool.connection() as db:
                row = db.execute("SELECT pg_database_size(current_database())").fetchone()
            pg_mb = (row[0] if row else 0) / 2**20
        finally:
            pg.close()
    finally:
        engine.stop(server.folder)
        shutil.rmtree(work, ignore_errors=True)
    gallery = np.concatenate([v for _, v in syn.chunks(SEED, min(n, 1_000_000))])
    return {
        "faces": n,
        "ingested_images": n_ingest,
        "sqlite": {**base, "size_mb": round(sqlite_mb, 1)},
        "postgres": {**theirs, "size_mb": round(pg_mb, 1), "settings": DURABLE},
        "array_read_p50_ms": array_read(gallery),
        "ratios_postgres_over_sqlite": {
            "ingest": round(theirs["ingest_images_per_s"] / base["ingest_images_per_s"], 3),
            "fill": round(theirs["fill_faces_per_s"] / base["fill_faces_per_s"], 3),
            "rerank_read_p50": round(
                theirs["rerank_read"]["p50_ms"] / base["rerank_read"]["p50_ms"], 3
            ),
            "erase_one_and_scrub": round(
                theirs["erase_one_and_scrub_s"] / max(base["erase_one_and_scrub_s"], 0.01), 3
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--ingest", type=int, default=5000, help="images through add_image")
    parser.add_argument(
        "--workdir", default=str(Path(tempfile.gettempdir()) / "facesearch-postgres-catalog")
    )
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        print(json.dumps(run(n, args.ingest, Path(args.workdir) / str(n))), flush=True)


if __name__ == "__main__":
    main()
