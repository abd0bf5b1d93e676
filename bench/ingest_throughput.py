"""How much does the engine add to the dlib work when it ingests photos?

A seeded sample of the dev photos (all kinds: portraits, groups, no-face photos, large
phone photos, aligned crops) is ingested by ``FaceSearch.ingest`` into a fresh home with
1 and with 2 workers. The baseline, timed in the same run, is the bare dlib pipeline on
the same photos already decoded in memory: detect + landmarks + descriptor, with the
engine's own detector and embedder settings (the same faces, the same network calls),
and nothing else. With 2 workers the baseline splits the photos in two halves run in
two processes and counts the slower half (an ideal split with no start-up cost).
The ratio engine / baseline minus one is the engine's overhead: decoding, hashing,
the catalog, the index, and (with workers) process start-up and model loading. Both wall
time and CPU time are reported: on a shared machine CPU time is the steadier of the two
(the engine's CPU time includes its worker processes, model loading in them included).

    .venv/bin/python bench/ingest_throughput.py [--photos 200] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import devset
from facesearch import FaceSearch, Settings
from facesearch.config import Faces
from facesearch.imaging import DecodeLimits, decode_image
from facesearch.ingest.analyse import select_faces

SEED = 11


def sample(n: int) -> list[Path]:
    rows = sorted(r["path"] for r in devset.manifest())
    return [devset.DEV / p for p in random.Random(SEED).sample(rows, min(n, len(rows)))]


def bare_dlib(paths: list[Path]) -> tuple[float, float, int]:
    """Wall and CPU seconds of model work on already-decoded photos, and faces embedded."""
    from facesearch.vision.dlib_models import DlibFaceDetector, DlibFaceEmbedder

    rules = Faces()
    detector = DlibFaceDetector(upsample=rules.upsample)
    embedder = DlibFaceEmbedder(flip_average=rules.flip_average)
    limits = DecodeLimits()
    pixels = [decode_image(p.read_bytes(), limits).pixels for p in paths]
    faces = 0
    started, cpu = time.perf_counter(), time.process_time()
    for image in pixels:
        kept, _ = select_faces(detector.detect_faces(image), rules)
        faces += len(embedder.embed_faces(image, kept))
    return time.perf_counter() - started, time.process_time() - cpu, faces


def baseline(paths: list[Path], workers: int) -> dict[str, Any]:
    if workers == 1:
        seconds, cpu, faces = bare_dlib(paths)
    else:
        parts = [paths[i::workers] for i in range(workers)]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            done = list(pool.map(bare_dlib, parts))
        seconds = max(s for s, _, _ in done)
        cpu = sum(c for _, c, _ in done)
        faces = sum(f for _, _, f in done)
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "images_per_s": round(len(paths) / seconds, 2),
        "faces": faces,
    }


def cpu_now() -> float:
    """CPU seconds of this process and of its finished (joined) worker processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def engine(paths: list[Path], workers: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        FaceSearch(Settings(home=Path(tmp) / "home", workers=workers)) as fs,
    ):
        devset.register_bench_source(fs, "bench")
        # Load the models before the clock starts, as the baseline does.
        assert fs.detector is not None and fs.model is not None
        started, cpu = time.perf_counter(), cpu_now()
        report = fs.ingest(paths, source="bench", workers=workers)
        seconds, cpu = time.perf_counter() - started, cpu_now() - cpu
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "images_per_s": round(len(paths) / seconds, 2),
        "faces": report.faces_indexed,
        "images_added": report.images_added,
        "failed": len(report.failed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200, help="sample size (0: all)")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    paths = sample(args.photos or 10**9)
    results = []
    for workers in (int(w) for w in args.workers.split(",")):
        base = baseline(paths, workers)
        eng = engine(paths, workers)
        results.append(
            {
                "workers": workers,
                "bare_dlib": base,
                "engine": eng,
                "ratio_seconds": round(eng["seconds"] / base["seconds"], 3),
                "overhead": round(eng["seconds"] / base["seconds"] - 1, 3),
                "ratio_cpu": round(eng["cpu_seconds"] / base["cpu_seconds"], 3),
                "overhead_cpu": round(eng["cpu_seconds"] / base["cpu_seconds"] - 1, 3),
            }
        )
    print(json.dumps({"photos": len(paths), "seed": SEED, "results": results}, indent=1))


if __name__ == "__main__":
    main()
