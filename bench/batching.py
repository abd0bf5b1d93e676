"""What does embedding across images buy? ``faces.batch_images`` 1 (each image's faces
embedded alone: the baseline) against larger batches, in the same run.

- embed: ms per face of ``embed_images`` over the detected faces of real dev photos,
  taken 1, 8 and 32 images per call (mirrors in the same call), default embedder;
- ingest: images/s of ``FaceSearch.ingest`` of the same photos, fresh home each time,
  with 1 and 2 workers, for each batch size.

    .venv/bin/python bench/batching.py
    .venv/bin/python bench/batching.py --photos 64 --batches 1,8,32 --workers 1,2

Prints one JSON object; ratios are against batch 1 of the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from devset import DEV, register_bench_source
from facesearch import FaceSearch, Settings
from facesearch.config import Faces
from facesearch.imaging import DecodeLimits, decode_image
from facesearch.vision.embedding import embed_images
from facesearch.vision.registry import ModelSpec

SEED = 20261205


def sample(n: int) -> list[Path]:
    """A seeded sample of dev photos: LFW portraits and the group and crowd photos."""
    lfw = sorted((DEV / "lfw").rglob("*.jpg"))
    groups = [
        *sorted((DEV / "compreface").glob("*.jpg")),
        DEV / "retinaface/test.jpg",
        DEV / "deepface/selfie-many-people.jpg",
    ]
    rng = random.Random(SEED)
    picked = rng.sample(lfw, max(0, n - len(groups))) + groups
    return sorted(picked)[:n]


def embed_figures(
    photos: list[Path], batches: list[int], seconds: float, cache: Path
) -> dict[str, Any]:
    spec = ModelSpec.from_settings(Faces(), cache=cache)
    detector, embedder = spec.build_detector(), spec.build_embedder()
    items = []
    for path in photos:
        pixels = decode_image(path.read_bytes(), DecodeLimits()).pixels
        items.append((pixels, detector.detect_faces(pixels)))
    faces = sum(len(f) for _, f in items)
    out: dict[str, Any] = {"faces": faces}
    for batch in batches:
        groups = [items[i : i + batch] for i in range(0, len(items), batch)]
        embed_images(embedder, groups[0])  # warm up
        rounds, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds or rounds == 0:
            for group in groups:
                embed_images(embedder, group)
            rounds += 1
        ms = (time.perf_counter() - started) * 1000 / (rounds * faces)
        out[f"batch{batch}_ms_per_face"] = round(ms, 2)
    base = out[f"batch{batches[0]}_ms_per_face"]
    for batch in batches[1:]:
        out[f"batch{batch}_speedup"] = round(base / out[f"batch{batch}_ms_per_face"], 2)
    return out


def ingest_rate(photos: list[Path], batch: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp), workers=workers, faces=Faces(batch_images=batch))
        with FaceSearch(settings) as engine:
            register_bench_source(engine, "bench")
            started = time.perf_counter()
            report = engine.ingest(photos, source="bench")
            elapsed = time.perf_counter() - started
    assert report.images_added == len(photos), report.failed
    return len(photos) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per embed figure")
    parser.add_argument("--only", default="embed,ingest")
    args = parser.parse_args()
    if not DEV.is_dir():
        print(f"bench/batching.py: the dev photos are not at {DEV}", file=sys.stderr)
        return 2
    photos = sample(args.photos)
    batches = [int(b) for b in args.batches.split(",")]
    result: dict[str, Any] = {"photos": len(photos), "batches": batches}
    if "embed" in args.only:
        with tempfile.TemporaryDirectory() as cache:
            result["embed"] = embed_figures(photos, batches, args.seconds, Path(cache))
    if "ingest" in args.only:
        for workers in (int(w) for w in args.workers.split(",")):
            rates = {b: ingest_rate(photos, b, workers) for b in batches}
            figures: dict[str, float] = {
                f"batch{b}_images_per_s": round(r, 2) for b, r in rates.items()
            }
            for b in batches[1:]:
                figures[f"batch{b}_ratio"] = round(rates[b] / rates[batches[0]], 2)
            result[f"ingest_workers{workers}"] = figures
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
