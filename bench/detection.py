"""How fast and how complete is RetinaFace, the default detector, against dlib's HOG?

- Speed: milliseconds per image of ``detect_faces`` (boxes, dlib's 5-point landmarks and
  the sharpness of each aligned chip: everything the engine asks a detector for), on the
  dev photos at least 1280 px long, resized so their longer side is 640 and 1280 px; both
  detectors run in this process, one thread each, alternating photo by photo. HOG is the
  baseline (the default before RetinaFace).
- Completeness, on the annotated dev photos: faces found on the CompreFace group photos
  (37 people), on the no-face photos (0 expected), on the crowd photo and on the group
  selfie; boxes of each detector that the other has no box over (a false face, or one the
  other missed: docs/benchmarks.md says which, as checked by eye).

    .venv/bin/python bench/detection.py [--rounds 3] [--photos 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
from PIL import Image

import devset
from facesearch.domain import DetectedFace
from facesearch.imaging import DecodeLimits, decode_image
from facesearch.vision.ports import FaceDetector
from facesearch.vision.registry import ModelSpec

LIMITS = DecodeLimits(max_bytes=50 * 1024 * 1024, max_pixels=60_000_000)
SIDES = (640, 1280)
CROWD = "retinaface/test.jpg"
SELFIE = "deepface/selfie-many-people.jpg"


def load(rel: str) -> np.ndarray:
    return decode_image((devset.DEV / rel).read_bytes(), LIMITS).pixels


def resized(image: np.ndarray, side: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = side / max(height, width)
    size = (round(width * scale), round(height * scale))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def speed(detectors: dict[str, FaceDetector], rounds: int, photos: int) -> dict[str, Any]:
    rows = devset.manifest()
    big = []
    for r in rows:
        if r["path"].startswith(("lfw/", "glint360k")):
            continue
        image = load(r["path"])
        if max(image.shape[:2]) >= max(SIDES):
            big.append((r["path"], image))
        if len(big) == photos:
            break
    out: dict[str, Any] = {"photos": len(big)}
    for side in SIDES:
        images = [resized(image, side) for _, image in big]
        times: dict[str, list[float]] = {name: [] for name in detectors}
        faces: dict[str, int] = dict.fromkeys(detectors, 0)
        for det in detectors.values():
            det.detect_faces(images[0])  # warm up (first ONNX run allocates)
        for _ in range(rounds):
            for image in images:
                for name, det in detectors.items():
                    started = time.perf_counter()
                    found = det.detect_faces(image)
                    times[name].append((time.perf_counter() - started) * 1000)
                    faces[name] += len(found)
        stats = {
            name: {
                "ms_p50": round(statistics.median(ms), 1),
                "ms_mean": round(statistics.fmean(ms), 1),
                "faces_per_round": faces[name] // rounds,
            }
            for name, ms in times.items()
        }
        stats["retinaface_speedup_p50"] = round(
            stats["dlib-hog"]["ms_p50"] / stats["retinaface"]["ms_p50"], 2
        )
        out[f"side_{side}"] = stats
    return out


def _over(face: DetectedFace, other: DetectedFace) -> bool:
    cx, cy = (other.box.x1 + other.box.x2) / 2, (other.box.y1 + other.box.y2) / 2
    return face.box.x1 <= cx <= face.box.x2 and face.box.y1 <= cy <= face.box.y2


def completeness(detectors: dict[str, FaceDetector]) -> dict[str, Any]:
    rows = devset.manifest()
    groups = {
        r["path"]: int(r["expected_faces"])
        for r in rows
        if r["path"].startswith("compreface/") and r["kind"] == "group"
    }
    nofaces = [r["path"] for r in rows if r["kind"] == "noface"]
    out: dict[str, Any] = {"compreface_people": sum(groups.values())}
    per_photo: dict[str, dict[str, Any]] = {}
    for rel in [*groups, CROWD, SELFIE]:
        image = load(rel)
        found = {name: det.detect_faces(image) for name, det in detectors.items()}
        row: dict[str, Any] = {"expected": groups.get(rel)}
        for name, faces in found.items():
            others = [f for n, fs in found.items() if n != name for f in fs]
            row[name] = {
                "found": len(faces),
                "no_box_of_the_other_over_it": sum(
                    not any(_over(o, f) for o in others) for f in faces
                ),
            }
        per_photo[rel] = row
    for name in detectors:
        out[name] = {
            "compreface_found": sum(per_photo[r][name]["found"] for r in groups),
            "compreface_over_expected": sum(
                max(0, per_photo[r][name]["found"] - groups[r]) for r in groups
            ),
            "compreface_under_expected": sum(
                max(0, groups[r] - per_photo[r][name]["found"]) for r in groups
            ),
            "compreface_no_box_of_the_other": sum(
                per_photo[r][name]["no_box_of_the_other_over_it"] for r in groups
            ),
            "noface_photos": len(nofaces),
            "faces_on_noface_photos": sum(
                len(detectors[name].detect_faces(load(r))) for r in nofaces
            ),
            "crowd": per_photo[CROWD][name]["found"],
            "selfie": per_photo[SELFIE][name]["found"],
        }
    out["per_photo"] = per_photo
    return out


def score_sweep() -> dict[str, Any]:
    """RetinaFace's faces by score threshold: the crowd, the CompreFace groups, the no-face
    photos, and boxes beyond the one face on the one-face dev photos (LFW photos often show
    a second, real person: these are not all false faces)."""
    from facesearch.vision.onnx.retinaface import RetinaFaceDetector

    detector = RetinaFaceDetector(min_score=0.5)
    scores: dict[str, tuple[str, list[float]]] = {}
    for r in devset.manifest():
        _, found, _ = detector.raw_detections(load(r["path"]))
        scores[r["path"]] = (r["kind"], [float(s) for s in found])
    out = {}
    for cut in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        n = {rel: sum(s >= cut for s in found) for rel, (_, found) in scores.items()}
        out[f"{cut:g}"] = {
            "crowd": n[CROWD],
            "compreface_groups": sum(
                n[rel]
                for rel, (kind, _) in scores.items()
                if kind == "group" and "compreface" in rel
            ),
            "noface_photos_faces": sum(
                n[rel] for rel, (kind, _) in scores.items() if kind == "noface"
            ),
            "one_face_photos_with_more": sum(
                n[rel] > 1 for rel, (kind, _) in scores.items() if kind == "face"
            ),
            "one_face_photos_with_none": sum(
                n[rel] == 0 for rel, (kind, _) in scores.items() if kind == "face"
            ),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", type=int, default=20, help="photos timed (>= 1280 px)")
    args = parser.parse_args()
    detectors = {
        "dlib-hog": ModelSpec(detector="dlib-hog").build_detector(),
        "retinaface": ModelSpec(detector="retinaface").build_detector(),
    }
    result = {
        "completeness": completeness(detectors),
        "retinaface_score_sweep": score_sweep(),
        "speed": speed(detectors, args.rounds, args.photos),
    }
    print(json.dumps(result, indent=1))
    print(
        json.dumps({k: v for k, v in result["completeness"].items() if k != "per_photo"}),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
