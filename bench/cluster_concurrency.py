"""Do several API servers on one PostgreSQL + Milvus answer concurrent searches and
ingests without errors, keep one audit chain, and store each image once?

Starts a PostgreSQL server (scripts/engines/postgres.py, fsync on) and a Milvus server
(scripts/engines/milvus.py), fills the catalog with ``--faces`` synthetic faces (seeded
unit vectors written to the catalog and the index) plus real photos of a few people,
starts ``--servers`` ``facesearch serve`` processes (uvicorn), each with its own home
and the shared catalog and index, and runs ``--clients`` client threads for
``--seconds``: each request goes to the next server in turn, three searches (a real
photo) for one ingest (a real photo, drawn from a pool shared by every client, so
clients meet the same files at the same moment). Then it checks:

- errors: every answer that is not 2xx, and every failed connection;
- the audit chain verifies (one chain, written by every server), and it holds one
  entry for every search and every new image answered;
- no duplicate rows: one image row per content hash, one face per (image, index), one
  copy per (source, path, image); the index holds exactly the catalog's faces (count
  and id checksum);
- the catalog's storage: pg_total_relation_size of each table over its rows (bytes per
  image, face, copy and audit entry, indexes and TOAST included), for docs/scaling.md.

The baseline, measured in the same run: the same search through one server with one
client before the concurrent run (latency ratio of the concurrent run against it).

    .venv/bin/python bench/cluster_concurrency.py                 # 180 s, 4 servers, 16 clients
    .venv/bin/python bench/cluster_concurrency.py --seconds 60

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import itertools
import json
import os
import random
import shutil
import socket
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
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.engines import postgres as pg_engine  # noqa: E402

from facesearch import FaceSearch, Settings  # noqa: E402
from facesearch.accounts.postgres import PostgresAccountStore  # noqa: E402
from facesearch.catalog.ports import NewImage  # noqa: E402
from facesearch.domain import BoundingBox, DetectedFace, Provenance, Source  # noqa: E402
from facesearch.governance.retention import stamp  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "faces-dev"
SEED = 20261204
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def milvus_engine() -> Any:
    spec = importlib.util.spec_from_file_location(
        "facesearch_milvus_engine", ROOT / "scripts" / "engines" / "milvus.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lfw(people: int) -> dict[str, list[Path]]:
    """Photos of ``people`` LFW people with at least 4 photos each."""
    by: dict[str, list[Path]] = {}
    with open(DEV / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["path"].startswith("lfw/"):
                by.setdefault(row["path"].split("/")[1], []).append(DEV / row["path"])
    chosen = sorted(p for p, photos in by.items() if len(photos) >= 4)[:people]
    return {p: sorted(by[p]) for p in chosen}


def settings(home: Path, catalog: str, index: str) -> Settings:
    return Settings(home=home, workers=1, catalog={"url": catalog}, index={"url": index})  # type: ignore[arg-type]


def source(name: str) -> Source:
    return Source(
        name=name,
        lawful_basis="legitimate_interests",
        special_category_condition="legal_claims",
        retention_days=3650,
    )


def fill(fs: FaceSearch, faces: int) -> None:
    """``faces`` synthetic single-face images in the catalog, then the index rebuilt."""
    rng = np.random.default_rng(SEED)
    keep = fs.source("synthetic").retention_days
    face = DetectedFace(box=BoundingBox(10, 10, 110, 110), score=1.0, landmarks=(), sharpness=50)
    vectors = rng.standard_normal((faces, fs.model.dim)).astype(np.float32)
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
        fs.catalog.add_image(image, stamp(copy, keep), None)
    fs.reindex()  # the index from the catalog, with the model's key


def serve(home: Path, catalog: str, index: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FACESEARCH_CATALOG__URL": catalog,
        "FACESEARCH_INDEX__URL": index,
        "FACESEARCH_API__SEARCH_RATE_PER_MINUTE": "1000000",
        "FACESEARCH_API__SEARCH_BURST": "100000",
        "FACESEARCH_API__INGEST_RATE_PER_MINUTE": "1000000",
        "FACESEARCH_API__INGEST_BURST": "100000",
    }
    cmd = [sys.executable, "-m", "facesearch.cli", "serve", "--home", str(home)]
    return subprocess.Popen(
        [*cmd, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def wait_ready(urls: list[str], procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for url, proc in zip(urls, procs, strict=True):
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"a server exited: {err[-800:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not start within {timeout:.0f} s")
            time.sleep(0.3)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "p50": round(pick(0.5), 1),
        "p99": round(pick(0.99), 1),
        "mean": round(statistics.fmean(values), 1),
    }


def search(http: httpx.Client, url: str, photo: Path) -> httpx.Response:
    return http.post(
        f"{url}/v1/search",
        files={"image": (photo.name, photo.read_bytes(), "image/jpeg")},
        data={"top_k": "10", "purpose": "benchmark", "case_ref": "BENCH-CONC"},
    )


def ingest(http: httpx.Client, url: str, photo: Path) -> httpx.Response:
    return http.post(
        f"{url}/v1/images",
        files={"image": (photo.name, photo.read_bytes(), "image/jpeg")},
        data={"source": "lfw"},
    )


def concurrent(
    urls: list[str], key: str, clients: int, seconds: float, probes: list[Path], pool: list[Path]
) -> dict[str, Any]:
    lock = threading.Lock()
    turn = itertools.count()
    stats: dict[str, Any] = {
        "search_ms": [],
        "ingest_ms": [],
        "searches": 0,
        "ingests": 0,
        "new_images": 0,
        "errors": [],
    }
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        rng = random.Random(SEED + n)
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=300) as http:
            while time.monotonic() < stop:
                i = next(turn)
                url = urls[i % len(urls)]
                kind = "ingest" if rng.random() < 0.25 else "search"
                photo = rng.choice(pool if kind == "ingest" else probes)
                t = time.perf_counter()
                try:
                    response = (ingest if kind == "ingest" else search)(http, url, photo)
                    status, body = response.status_code, response.text[:200]
                except httpx.HTTPError as exc:
                    status, body = 0, f"{type(exc).__name__}: {exc}"
                elapsed = (time.perf_counter() - t) * 1000
                with lock:
                    if not 200 <= status < 300:
                        stats["errors"].append({"kind": kind, "status": status, "body": body})
                        continue
                    stats[f"{kind}_ms"].append(elapsed)
                    stats[f"{kind}es" if kind == "search" else "ingests"] += 1
                    if kind == "ingest" and status == 201:
                        stats["new_images"] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - started
    return {
        "wall_s": round(wall, 1),
        "searches": stats["searches"],
        "ingests": stats["ingests"],
        "new_images": stats["new_images"],
        "requests_per_s": round((stats["searches"] + stats["ingests"]) / wall, 2),
        "search_ms": percentiles(stats["search_ms"]),
        "ingest_ms": percentiles(stats["ingest_ms"]),
        "errors": len(stats["errors"]),
        "first_errors": stats["errors"][:5],
    }


def baseline(url: str, key: str, probes: list[Path], n: int) -> dict[str, float]:
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=300) as http:
        times = []
        for photo in itertools.islice(itertools.cycle(probes), n):
            t = time.perf_counter()
            response = search(http, url, photo)
            assert response.status_code == 200, response.text
            times.append((time.perf_counter() - t) * 1000)
    return percentiles(times)


def sql(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as db:
        return db.execute(query).fetchall()


def storage(url: str) -> dict[str, Any]:
    """Bytes per row of each catalog table (heap, indexes and TOAST)."""
    out: dict[str, Any] = {}
    for table in ("images", "faces", "provenance", "audit", "sources"):
        [(size, rows)] = sql(
            url, f"SELECT pg_total_relation_size('{table}'), (SELECT count(*) FROM {table})"
        )
        out[table] = {
            "rows": rows,
            "bytes": size,
            "bytes_per_row": round(size / rows, 1) if rows else None,
        }
    [(db_size,)] = sql(url, "SELECT pg_database_size(current_database())")
    out["database_bytes"] = db_size
    return out


def checks(url: str, fs: FaceSearch) -> dict[str, Any]:
    dup = {
        "images_by_sha256": "SELECT count(*) FROM (SELECT sha256 FROM images "
        "GROUP BY sha256 HAVING count(*) > 1) d",
        "faces_by_image_idx": "SELECT count(*) FROM (SELECT image_id, idx FROM faces "
        "GROUP BY image_id, idx HAVING count(*) > 1) d",
        "copies_by_source_path_image": "SELECT count(*) FROM (SELECT source_id, path, "
        "image_id FROM provenance GROUP BY 1, 2, 3 HAVING count(*) > 1) d",
        "images_without_copy": "SELECT count(*) FROM images i WHERE NOT EXISTS "
        "(SELECT 1 FROM provenance p WHERE p.image_id = i.id)",
    }
    found = {name: sql(url, q)[0][0] for name, q in dup.items()}
    verification = fs.verify_audit()
    state = fs.index.state()
    faces = fs.catalog.face_state()
    actions = dict(sql(url, "SELECT action, count(*) FROM audit GROUP BY action"))
    return {
        "duplicates": found,
        "no_duplicates": not any(found.values()),
        "audit_verifies": verification.ok,
        "audit_entries": verification.entries,
        "audit_actions": actions,
        "index_matches_catalog": (state.count, state.id_sum) == faces,
        "catalog_faces": faces[0],
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    milvus = milvus_engine()
    pg = pg_engine.start(work / "pg", settings=DURABLE)
    try:
        milvus_url = milvus.start(work / "milvus", f"conc_{time.time_ns()}")
        catalog = pg.url()
        people = lfw(args.people)
        gallery = [photos[0] for photos in people.values()]
        probes = [photos[1] for photos in people.values()]
        pool = [p for photos in people.values() for p in photos[2:]]
        t = time.perf_counter()
        with FaceSearch(settings(work / "h0", catalog, milvus_url)) as fs:
            fs.add_source(source("lfw"))
            fs.add_source(source("synthetic"))
            fs.ingest(gallery, source="lfw")
            fill(fs, args.faces)
        accounts = PostgresAccountStore(catalog)
        _, key = accounts.create_key("bench", "admin")
        accounts.close()
        build_s = round(time.perf_counter() - t, 1)
        ports = [free_port() for _ in range(args.servers)]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        procs = [
            serve(work / f"h{n + 1}", catalog, milvus_url, port) for n, port in enumerate(ports)
        ]
        try:
            wait_ready(urls, procs, 300)
            base = baseline(urls[0], key, probes, args.baseline)
            for url in urls[1:]:
                baseline(url, key, probes[:1], 1)  # load each server's models
            before = sql(catalog, "SELECT count(*) FROM audit")[0][0]
            result = concurrent(urls, key, args.clients, args.seconds, probes, pool)
            after = sql(catalog, "SELECT count(*) FROM audit")[0][0]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        with FaceSearch(settings(work / "h0", catalog, milvus_url)) as fs:
            checked = checks(catalog, fs)
        audited = result["searches"] + result["new_images"]
        checked["audit_entries_added"] = after - before
        checked["audit_has_every_search_and_new_image"] = after - before >= audited
        return {
            "servers": args.servers,
            "clients": args.clients,
            "seconds": args.seconds,
            "stored_faces_before": args.faces + len(gallery),
            "ingest_pool_photos": len(pool),
            "build_s": build_s,
            "cpus": os.cpu_count(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
            "baseline_one_client_search_ms": base,
            "concurrent": result,
            "ratio_search_p50_concurrent_over_baseline": round(
                result["search_ms"].get("p50", 0) / base["p50"], 2
            )
            if base
            else None,
            "checks": checked,
            "ok": result["errors"] == 0
            and checked["audit_verifies"]
            and checked["no_duplicates"]
            and checked["index_matches_catalog"]
            and checked["audit_has_every_search_and_new_image"],
            "catalog_storage": storage(catalog),
        }
    finally:
        with_milvus = work / "milvus"
        if with_milvus.exists():
            milvus.stop(with_milvus)
        pg_engine.stop(pg.folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--faces", type=int, default=20_000, help="synthetic faces stored first")
    parser.add_argument("--people", type=int, default=12, help="LFW people with 4+ photos")
    parser.add_argument("--baseline", type=int, default=12, help="1-client searches first")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facesearch-conc-"))
    work.chmod(0o755)  # PostgreSQL runs as its own user, inside
    try:
        report = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
