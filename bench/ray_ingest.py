"""What does ingesting through Ray cost over the embedded path, on one machine?

A seeded sample of the dev photos (all kinds: portraits, groups, no-face photos, large
phone photos, aligned crops) is ingested by ``FaceSearch.ingest`` into a fresh home, with
1 and with 2 workers, two ways in the same run: the embedded path (``executor = local``:
in this process with 1 worker, forked worker processes with 2; the baseline) and Ray
(``executor = ray``: one Ray actor per worker, on a local Ray instance started once by
this script before any clock runs, as a cluster is already running when one ingests).
Runs alternate (embedded, Ray, embedded, Ray, ...) so that a busy machine slows both
alike; the median of the rounds is reported. Ray's figures include creating its actors
and loading the models in them (the embedded path with 1 worker uses the models already
loaded in this process; with 2 it forks workers that load them).

Wall time and CPU time are both reported; on a shared machine CPU time is the steadier
(this process plus its workers: joined worker processes for the embedded path, the Ray
actors' own counters, read from /proc while they run, for Ray). ``overhead`` is
ray / embedded - 1. ``cpu_seconds_per_image`` of Ray with 1 worker is what a worker core
spends per photo (with the driver's share), ``driver_cpu_seconds_per_image`` the driver's
own share (reading, hashing, writing the catalog and index, talking to Ray): docs/scaling.md
sizes ingest machines from them.

    .venv/bin/python bench/ray_ingest.py [--photos 60] [--workers 1,2] [--rounds 3]
        [--folder DIR]   # your own photos: the per-image cost depends on their size
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

import devset
from facesearch import FaceSearch, Settings
from facesearch.ingest.items import IMAGE_SUFFIXES
from facesearch.ingest.report import IngestReport
from ingest_throughput import SEED, sample

TICKS = os.sysconf("SC_CLK_TCK")


def ray_workers_cpu() -> dict[int, float]:
    """CPU seconds so far of each Ray worker running facesearch jobs (by process title)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "cmdline").read_bytes().startswith(b"ray::_Worker"):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    return found


def cpu_now() -> float:
    """CPU seconds of this process and of its finished (joined) worker processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def ingest(paths: list[Path], workers: int, executor: str) -> dict[str, Any]:
    actors: dict[int, float] = {}

    def watch(report: IngestReport, done: int) -> None:
        if executor == "ray":  # the actors end with the ingest: keep their last counters
            actors.update(ray_workers_cpu())

    with (
        tempfile.TemporaryDirectory() as tmp,
        FaceSearch(Settings(home=Path(tmp) / "home", workers=workers, executor=executor)) as fs,
    ):
        devset.register_bench_source(fs, "bench")
        assert fs.detector is not None and fs.model is not None  # loaded before the clock
        started, cpu, own = time.perf_counter(), cpu_now(), time.process_time()
        report = fs.ingest(paths, source="bench", workers=workers, progress=watch)
        seconds, cpu = time.perf_counter() - started, cpu_now() - cpu
        own = time.process_time() - own
    cpu += sum(actors.values())
    assert not report.failed, report.failed[:3]
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "driver_cpu_seconds": own,
        "faces": report.faces_indexed,
        "images_added": report.images_added,
    }


def summary(runs: list[dict[str, Any]], images: int) -> dict[str, Any]:
    seconds = statistics.median(r["seconds"] for r in runs)
    cpu = statistics.median(r["cpu_seconds"] for r in runs)
    return {
        "seconds": round(seconds, 2),
        "seconds_each_round": [round(r["seconds"], 2) for r in runs],
        "cpu_seconds": round(cpu, 2),
        "images_per_s": round(images / seconds, 2),
        "cpu_seconds_per_image": round(cpu / images, 3),
        "driver_cpu_seconds_per_image": round(
            statistics.median(r["driver_cpu_seconds"] for r in runs) / images, 4
        ),
        "faces": runs[0]["faces"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=60, help="sample size (0: all)")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each path, alternated")
    parser.add_argument(
        "--folder", type=Path, help="sample your own photos from here instead of the dev set"
    )
    args = parser.parse_args()
    if args.folder is None:
        paths = sample(args.photos or 10**9)
    else:
        found = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        paths = random.Random(SEED).sample(found, min(args.photos or 10**9, len(found)))
    counts = [int(w) for w in args.workers.split(",")]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fs-ray-", dir="/tmp") as ray_dir:
        ray.init(
            num_cpus=max(counts),
            include_dashboard=False,
            _temp_dir=ray_dir,
            log_to_driver=False,
            logging_level="ERROR",
        )
        ray_start = time.perf_counter() - started
        results = []
        try:
            for workers in counts:
                runs: dict[str, list[dict[str, Any]]] = {"local": [], "ray": []}
                for _ in range(args.rounds):
                    for executor in ("local", "ray"):
                        runs[executor].append(ingest(paths, workers, executor))
                embedded = summary(runs["local"], len(paths))
                on_ray = summary(runs["ray"], len(paths))
                assert embedded["faces"] == on_ray["faces"], "both paths index the same faces"
                results.append(
                    {
                        "workers": workers,
                        "embedded": embedded,
                        "ray": on_ray,
                        "ratio_seconds": round(on_ray["seconds"] / embedded["seconds"], 3),
                        "overhead": round(on_ray["seconds"] / embedded["seconds"] - 1, 3),
                        "ratio_cpu": round(on_ray["cpu_seconds"] / embedded["cpu_seconds"], 3),
                        "overhead_cpu": round(
                            on_ray["cpu_seconds"] / embedded["cpu_seconds"] - 1, 3
                        ),
                    }
                )
        finally:
            ray.shutdown()
    print(
        json.dumps(
            {
                "photos": len(paths),
                "rounds": args.rounds,
                "ray_version": ray.__version__,
                "ray_start_seconds": round(ray_start, 2),
                "cores": os.cpu_count(),
                "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
