"""How much faster is dlib's network on ONNX Runtime, batched, than on dlib's runtime?

Same photos, same chips, same process, both runtimes (``faces.embedder`` = ``dlib-resnet``,
the baseline, and ``dlib-resnet-onnx``):

- embed: ms per face of the network alone on real dev chips, one chip per call (batch 1)
  and 16 per call (batch 16), with the largest difference between the two runtimes'
  descriptors (they are the same model: tests/integration/test_onnx_dlib.py);
- ingest: images/s of ``FaceSearch.ingest`` on a seeded sample of dev photos, with 1 and
  2 workers (HOG detection in both: only the embedder changes);
- search: end-to-end latency of ``FaceSearch.search`` (decode, detect, embed, index,
  catalog) for a one-face 640 px probe in a home of N faces (one real photo plus seeded
  random vectors written straight to the catalog and index), p50 and p95.

    .venv/bin/python bench/embedding.py
    .venv/bin/python bench/embedding.py --photos 30 --faces 10000 --searches 30

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facesearch import FaceSearch, Settings
from facesearch.catalog.ports import NewImage
from facesearch.domain import BoundingBox, DetectedFace, Provenance, Source
from facesearch.governance.retention import stamp
from facesearch.imaging import DecodeLimits, decode_image

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "data" / "faces-dev"
PROBE = DEV / "face_recognition/examples/obama2.jpg"
GALLERY_PHOTO = DEV / "face_recognition/examples/obama.jpg"
SEED = 20261204
BASELINE, CANDIDATE = "dlib-resnet", "dlib-resnet-onnx"


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {
        "p50": round(pick(0.5), 1),
        "p95": round(pick(0.95), 1),
        "mean": round(statistics.fmean(values), 1),
    }


def sample(n: int) -> list[Path]:
    import csv

    with open(DEV / "manifest.csv", newline="") as fh:
        rows = sorted(r["path"] for r in csv.DictReader(fh))
    return [DEV / p for p in random.Random(SEED).sample(rows, min(n, len(rows)))]


def source(fs: FaceSearch, name: str) -> None:
    fs.add_source(
        Source(
            name=name,
            lawful_basis="legitimate_interests",
            special_category_condition="legal_claims",
            retention_days=3650,
        )
    )


# -- embed ---------------------------------------------------------------------------------
def chips(count: int) -> list[np.ndarray]:
    from facesearch.vision.dlib_models import DlibFaceDetector, face_chips

    detector = DlibFaceDetector()
    out: list[np.ndarray] = []
    for path in sample(200):
        image = decode_image(path.read_bytes(), DecodeLimits()).pixels
        out += face_chips(image, detector.detect_faces(image))
        if len(out) >= count:
            return out[:count]
    return out


def per_face_ms(describe: Any, batch: list[np.ndarray], size: int, seconds: float) -> float:
    calls = [batch[i : i + size] for i in range(0, len(batch), size)]
    describe(calls[0])  # warm
    started, faces = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        for call in calls:
            describe(call)
            faces += len(call)
    return 1000 * (time.perf_counter() - started) / faces


def embed(seconds: float) -> dict[str, Any]:
    from facesearch.vision.dlib_models import DlibFaceEmbedder
    from facesearch.vision.onnx.dlib_resnet import OnnxDlibEmbedder

    batch = chips(16)
    dlib_runtime, onnx_runtime = DlibFaceEmbedder(), OnnxDlibEmbedder()
    out: dict[str, Any] = {"chips": len(batch)}
    for size in (1, 16):
        base = per_face_ms(dlib_runtime.describe, batch, size, seconds)
        new = per_face_ms(onnx_runtime.describe, batch, size, seconds)
        out[f"batch_{size}"] = {
            f"{BASELINE}_ms_per_face": round(base, 2),
            f"{CANDIDATE}_ms_per_face": round(new, 2),
            "speedup": round(base / new, 2),
        }
    diff = np.abs(dlib_runtime.describe(batch) - onnx_runtime.describe(batch)).max()
    out["max_abs_difference"] = float(diff)
    return out


# -- ingest ----------------------------------------------------------------------------------
def ingest_once(paths: list[Path], embedder: str, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", workers=workers, faces={"embedder": embedder})
        with FaceSearch(settings) as fs:
            source(fs, "bench")
            assert fs.detector is not None and fs.model is not None  # load before the clock
            started = time.perf_counter()
            report = fs.ingest(paths, source="bench", workers=workers)
            seconds = time.perf_counter() - started
    return {"images_per_s": round(len(paths) / seconds, 2), "faces": report.faces_indexed}


def ingest(photos: int, workers_list: list[int]) -> list[dict[str, Any]]:
    paths = sample(photos)
    out = []
    for workers in workers_list:
        base = ingest_once(paths, BASELINE, workers)
        new = ingest_once(paths, CANDIDATE, workers)
        assert base["faces"] == new["faces"]
        out.append(
            {
                "workers": workers,
                "photos": len(paths),
                BASELINE: base,
                CANDIDATE: new,
                "speedup": round(new["images_per_s"] / base["images_per_s"], 2),
            }
        )
    return out


# -- search ----------------------------------------------------------------------------------
def build_home(home: Path, faces: int) -> None:
    """One real photo, then ``faces - 1`` synthetic single-face images."""
    rng = np.random.default_rng(SEED)
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        source(fs, "real")
        source(fs, "synthetic")
        fs.ingest([GALLERY_PHOTO], source="real")
        keep = fs.source("synthetic").retention_days
        face = DetectedFace(box=BoundingBox(10, 10, 110, 110), score=1.0, sharpness=50.0)
        vectors = rng.standard_normal((faces - 1, fs.model.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids: list[int] = []
        for n, vec in enumerate(vectors):
            image = NewImage(f"{n:064x}", 200, 200, "JPEG", 1000, [face], vec[None, :])
            copy = Provenance(source="synthetic", path=f"/synthetic/{n}.jpg")
            ids += fs.catalog.add_image(image, stamp(copy, keep), None)[1]
        fs.index.add(np.asarray(ids, dtype=np.int64), vectors)


def search(faces: int, searches: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe-640.jpg"
        image = Image.open(PROBE).convert("RGB")
        image.thumbnail((640, 640))
        image.save(probe, quality=92)
        home = Path(tmp) / "home"
        build_home(home, faces)
        out: dict[str, Any] = {"faces": faces, "probe_size": list(image.size)}
        for embedder in (BASELINE, CANDIDATE):
            settings = Settings(home=home, workers=1, faces={"embedder": embedder})
            with FaceSearch(settings) as fs:
                fs.search(probe)  # warm: models loaded, index open
                times = []
                for _ in range(searches):
                    started = time.perf_counter()
                    [result] = fs.search(probe)
                    times.append(1000 * (time.perf_counter() - started))
                assert Path(result.matches[0].image.path).name == GALLERY_PHOTO.name
            out[embedder] = percentiles(times)
        out["speedup_p50"] = round(out[BASELINE]["p50"] / out[CANDIDATE]["p50"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=30, help="ingest sample size")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--faces", type=int, default=10_000, help="faces in the search home")
    parser.add_argument("--searches", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per embed figure")
    parser.add_argument("--only", default="embed,ingest,search")
    args = parser.parse_args()
    if not (DEV / "manifest.csv").is_file():
        sys.exit(f"the dev photos are not at {DEV}")
    only = args.only.split(",")
    result: dict[str, Any] = {"seed": SEED, "baseline": BASELINE, "candidate": CANDIDATE}
    if "embed" in only:
        result["embed"] = embed(args.seconds)
    if "ingest" in only:
        result["ingest"] = ingest(args.photos, [int(w) for w in args.workers.split(",")])
    if "search" in only:
        result["search"] = search(args.faces, args.searches)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
