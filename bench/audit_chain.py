"""How fast do audit entries go into one chain when several processes append at once,
on PostgreSQL against SQLite?

For each backend, in the same run, ``--writers`` processes (each its own connection, as
API servers and command-line runs are) append ``--entries`` entries each to one audit
log, all starting together; the anchor (the latest entry, written twice per append) is in
the catalog of the same backend, as ``facesearch.parts`` builds it. Reported: appends/s
over all writers, the p50/p99 of one append, then ``verify`` over the whole chain (time,
and that it is intact with no entry number missing or twice). SQLite (``audit.sqlite``
and ``catalog.sqlite`` in WAL mode) is the baseline.

PostgreSQL is Debian's, started by scripts/engines/postgres.py in a temporary folder on
the same disk, with fsync on and ``synchronous_commit=off`` (SQLite's WAL mode with
``synchronous=NORMAL`` gives the same durability); the client reaches it over TCP.

    .venv/bin/python bench/audit_chain.py --writers 1,4 --entries 300

Prints one JSON object per number of writers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for scripts/
from scripts.engines import postgres as engine

from facesearch.catalog.postgres.audit import PostgresAuditStore
from facesearch.catalog.postgres.catalog import PostgresCatalog
from facesearch.catalog.sqlite import SqliteCatalog
from facesearch.catalog.sqlite_audit import SqliteAuditStore
from facesearch.governance.audit import AuditEvent, AuditLog, CatalogAnchor

DURABLE = {"fsync": "on", "synchronous_commit": "off"}
Opener = Callable[[], tuple[AuditLog, Any]]


def opener(backend: str, where: str) -> Opener:
    def open_log() -> tuple[AuditLog, Any]:
        if backend == "sqlite":
            catalog: Any = SqliteCatalog(Path(where) / "catalog.sqlite")
            store: Any = SqliteAuditStore(Path(where) / "audit.sqlite")
        else:
            catalog, store = PostgresCatalog(where), PostgresAuditStore(where)
        return AuditLog(store, CatalogAnchor(catalog)), catalog

    return open_log


def write(backend: str, where: str, who: int, count: int, start: Any, out: Any) -> None:
    log, catalog = opener(backend, where)()
    times = []
    try:
        start.wait(120)
        for i in range(count):
            began = time.perf_counter()
            log.append(
                AuditEvent(
                    action="search",
                    actor=f"key:{who}",
                    purpose="investigation",
                    case_ref="CASE-42",
                    details={"results": 20, "probe_sha256": f"{who:04d}{i:060d}"},
                )
            )
            times.append(time.perf_counter() - began)
    finally:
        log.close()
        catalog.close()
    out.put(times)


def measure(backend: str, where: str, writers: int, count: int) -> dict[str, Any]:
    # The tables made once, as a deployment's first start or `db upgrade` does.
    log, catalog = opener(backend, where)()
    log.close()
    catalog.close()
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(writers + 1), context.Queue()
    procs = [
        context.Process(target=write, args=(backend, where, w, count, start, out))
        for w in range(writers)
    ]
    for p in procs:
        p.start()
    start.wait(120)
    began = time.perf_counter()
    times = [t for _ in procs for t in out.get(timeout=600)]
    wall = time.perf_counter() - began
    for p in procs:
        p.join(60)
    log, catalog = opener(backend, where)()
    try:
        began = time.perf_counter()
        result = log.verify()
        verify_s = time.perf_counter() - began
        seqs = [e.seq for e in log.entries()]
    finally:
        log.close()
        catalog.close()
    ms = sorted(t * 1000 for t in times)
    return {
        "appends": len(times),
        "appends_per_s": round(len(times) / wall, 1),
        "append_p50_ms": round(statistics.median(ms), 2),
        "append_p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 2),
        "verify_s": round(verify_s, 3),
        "verified": result.ok and result.entries == len(times),
        "seq_contiguous": seqs == list(range(1, len(times) + 1)),
    }


def run(writers: int, count: int, work: Path) -> dict[str, Any]:
    shutil.rmtree(work, ignore_errors=True)
    (work / "sqlite").mkdir(parents=True)
    base = measure("sqlite", str(work / "sqlite"), writers, count)
    server = engine.start(work / "pg", settings=DURABLE)
    try:
        theirs = measure("postgres", server.url(), writers, count)
    finally:
        engine.stop(server.folder)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "writers": writers,
        "entries_per_writer": count,
        "sqlite": base,
        "postgres": {**theirs, "settings": DURABLE},
        "ratios_postgres_over_sqlite": {
            "appends_per_s": round(theirs["appends_per_s"] / base["appends_per_s"], 3),
            "append_p50": round(theirs["append_p50_ms"] / base["append_p50_ms"], 3),
            "verify": round(theirs["verify_s"] / max(base["verify_s"], 1e-3), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writers", default="1,4", help="processes appending at once")
    parser.add_argument("--entries", type=int, default=300, help="entries per writer")
    parser.add_argument(
        "--workdir", default=str(Path(tempfile.gettempdir()) / "facesearch-audit-chain")
    )
    args = parser.parse_args()
    for w in (int(s) for s in args.writers.split(",")):
        print(json.dumps(run(w, args.entries, Path(args.workdir) / str(w))), flush=True)


if __name__ == "__main__":
    main()
