"""Does the CUDA path give the CPU path's embeddings, and how fast is it? (GPU machines)

Runs dlib's network converted to ONNX (``vision/onnx/dlib_convert.py``) on ONNX Runtime's
CUDA provider and on its CPU provider, on the same chips, and reports:

- the agreement of the two paths' descriptors (cosine >= 0.9999 to pass, as between
  dlib's runtime and the CPU graph);
- faces/s of the network alone at batch 1, 16, 64 and 256 on each provider;
- with ``--photos DIR`` and dlib installed: images/s of ``FaceSearch.ingest`` with the
  embedder on CUDA, against the same ingest on the CPU, in the same run.

Needs ``onnxruntime-gpu`` (not ``onnxruntime``) and a GPU; prints JSON and exits 1 when
the paths disagree, 2 when no CUDA provider is there. CI never runs it.

    python bench/gpu_check.py                              # chips from the dev photos
    python bench/gpu_check.py --model home/models/dlib_face_recognition_resnet_model_v1-0.3.0.onnx
    python bench/gpu_check.py --photos ../shared/data/faces-dev/lfw --limit 200
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "data" / "faces-dev"
SEED = 20261204
CUDA = "CUDAExecutionProvider"


def model_bytes(path: Path | None) -> bytes:
    if path is not None:
        return path.read_bytes()
    from facesearch.vision.onnx.dlib_resnet import dlib_resnet_onnx

    return dlib_resnet_onnx(None)


def dev_chips(count: int) -> np.ndarray:
    """Real chips (dlib's aligner on the dev photos) when dlib is there, else seeded noise."""
    try:
        from facesearch.imaging import DecodeLimits, decode_image
        from facesearch.vision.dlib_models import DlibFaceDetector, face_chips
    except ImportError:
        rng = np.random.default_rng(SEED)
        return rng.integers(0, 256, (count, 150, 150, 3), dtype=np.uint8)
    detector = DlibFaceDetector()
    out: list[np.ndarray] = []
    for path in sorted((DEV / "lfw").rglob("*.jpg"))[: count * 2]:
        image = decode_image(path.read_bytes(), DecodeLimits()).pixels
        out += face_chips(image, detector.detect_faces(image))
        if len(out) >= count:
            break
    return np.stack(out[:count])


def faces_per_s(session: Any, chips: np.ndarray, batch: int, seconds: float) -> float:
    feed = np.ascontiguousarray(np.resize(chips, (batch, *chips.shape[1:])), dtype=np.float32)
    session.run(None, {"chips": feed})
    session.run(None, {"chips": feed})  # warm: CUDA kernels chosen on the first calls
    started, faces = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        session.run(None, {"chips": feed})
        faces += batch
    return faces / (time.perf_counter() - started)


def ingest_rate(photos: list[Path], device: str) -> dict[str, Any]:
    """images/s of the engine's ingest with the embedder on ``device`` (one worker)."""
    from facesearch import FaceSearch, Settings
    from facesearch.domain import Source
    from facesearch.vision.onnx.dlib_resnet import OnnxDlibEmbedder

    with tempfile.TemporaryDirectory() as tmp:
        embedder = OnnxDlibEmbedder(device=device)
        with FaceSearch(Settings(home=Path(tmp) / "home", workers=1), embedder=embedder) as fs:
            fs.add_source(
                Source(
                    name="gpu",
                    lawful_basis="legitimate_interests",
                    special_category_condition="legal_claims",
                    retention_days=30,
                )
            )
            assert fs.detector is not None
            started = time.perf_counter()
            report = fs.ingest(photos, source="gpu", workers=1)
            seconds = time.perf_counter() - started
    return {"images_per_s": round(len(photos) / seconds, 2), "faces": report.faces_indexed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a converted .onnx (default: convert now)")
    parser.add_argument("--chips", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--photos", type=Path, help="a folder of photos for the ingest rate")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument(
        "--dry-run", action="store_true", help="no GPU: run the CPU path twice (checks the script)"
    )
    args = parser.parse_args()
    device = "cpu" if args.dry_run else "auto"

    import onnxruntime as ort

    from facesearch.vision.onnx.session import open_session

    report: dict[str, Any] = {
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
    }
    if CUDA not in report["providers"] and not args.dry_run:
        report["error"] = "no CUDA provider: install onnxruntime-gpu on a machine with a GPU"
        print(json.dumps(report, indent=1))
        return 2
    data = model_bytes(args.model)
    cpu = open_session(data, intra_threads=4, prefer_gpu=False)
    gpu = open_session(data, prefer_gpu=device != "cpu")
    report["gpu_session_providers"] = gpu.get_providers()
    chips = dev_chips(args.chips)
    feed = chips.astype(np.float32)
    a = cpu.run(None, {"chips": feed})[0]
    b = gpu.run(None, {"chips": feed})[0]
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    report["agreement"] = {
        "chips": len(chips),
        "min_cosine": float(cosine.min()),
        "max_abs_difference": float(np.abs(a - b).max()),
        "pass": bool(cosine.min() >= 0.9999),
    }
    report["faces_per_s"] = {}
    for batch in (1, 16, 64, 256):
        on_cpu = faces_per_s(cpu, chips, batch, args.seconds)
        on_gpu = faces_per_s(gpu, chips, batch, args.seconds)
        report["faces_per_s"][f"batch_{batch}"] = {
            "cpu_4_threads": round(on_cpu, 1),
            "cuda": round(on_gpu, 1),
            "ratio": round(on_gpu / on_cpu, 2),
        }
    if args.photos is not None:
        photos = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
        photos = photos[: args.limit]
        base = ingest_rate(photos, "cpu")
        new = ingest_rate(photos, device)
        report["ingest"] = {
            "photos": len(photos),
            "cpu": base,
            "cuda": new,
            "ratio": round(new["images_per_s"] / base["images_per_s"], 2),
        }
    print(json.dumps(report, indent=1))
    return 0 if report["agreement"]["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
