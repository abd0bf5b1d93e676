"""`make demo-cluster`: the demo of `make demo` on the distributed backends, end to end.

Starts a real PostgreSQL server (the catalog, audit log, suppression list and accounts)
and a real Milvus server (the vector index) in folders of their own under
demo-data/cluster, ingests the demo photos through a local Ray instance
(``--cluster auto``), searches, verifies the audit chain, and stops both servers. The
commands are the ones a person types: only ``--catalog``, ``--index`` and ``--cluster``
differ from the embedded demo.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo import ADD_SOURCE, DEMO, FACESEARCH, PROBE, SOURCE, fetch_photos, write_manifest

from engines import milvus, postgres

CLUSTER = DEMO / "cluster"


def main() -> int:
    photos = fetch_photos()
    manifest = write_manifest(photos)
    shutil.rmtree(CLUSTER, ignore_errors=True)  # fresh servers and home on every run
    CLUSTER.mkdir(parents=True)
    print("Starting PostgreSQL and Milvus (real servers, own folders, free ports) ...")
    try:
        database = postgres.start(CLUSTER / "postgres").url()
        index = milvus.start(CLUSTER / "milvus", collection="demo")
    except (postgres.Unavailable, milvus.MilvusUnavailable) as exc:
        postgres.stop(CLUSTER / "postgres")
        print(f"error: {exc}", file=sys.stderr)
        return 1
    where = ["--home", str(CLUSTER / "home"), "--catalog", database, "--index", index]
    steps = [
        [*ADD_SOURCE, *where],
        [
            "ingest",
            str(manifest),
            "--source",
            SOURCE,
            "--cluster",
            "auto",
            *where,
        ],
        ["stats", *where],
        [
            "search",
            str(photos / PROBE),
            "--top-k",
            "10",
            "--purpose",
            "demo",
            "--case-ref",
            "DEMO-CLUSTER-1",
            *where,
        ],
        ["audit", "verify", *where],
    ]
    try:
        for step in steps:
            print(f"\n$ facesearch {' '.join(step)}", flush=True)
            subprocess.run(FACESEARCH + step, check=True)
    except subprocess.CalledProcessError as exc:
        print(f"error: a step failed with exit status {exc.returncode}", file=sys.stderr)
        return 1
    finally:
        print("\nStopping PostgreSQL and Milvus ...")
        milvus.stop(CLUSTER / "milvus")
        postgres.stop(CLUSTER / "postgres")
    return 0


if __name__ == "__main__":
    sys.exit(main())
