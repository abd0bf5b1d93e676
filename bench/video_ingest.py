"""How fast is a video analysed, and how many faces does one appearance cost the index?

A clip is made here from the dev photos (PyAV, MPEG-4 at 25 frames/s, 640x480, CCTV-like
bit rate): each photo is one scene, held on screen for ``--scene`` seconds, so the truth
is known: one appearance per person per scene. For each sampling rate: frames/s decoded
and analysed by ``ingest.video.scan_video`` (decode, sample, detect, embed, track), and
the faces indexed per minute of video against the faces detected per minute (what
indexing every analysed frame would cost). The baseline, measured in the same run, is
PyAV decoding every frame with nothing else done. A full ``FaceSearch.ingest`` of the
clip is timed at the default rate.

    .venv/bin/python bench/video_ingest.py --scene 10 --rates 1,2,4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from facesearch import FaceSearch, Settings
from facesearch.domain import Source
from facesearch.ingest.video import VideoRules, scan_video
from facesearch.vision.dlib_models import DlibFaceDetector, DlibFaceEmbedder

HERE = Path(__file__).resolve().parent
DEV = Path(os.environ.get("FACESEARCH_DEV", HERE.parent.parent / "shared" / "data" / "faces-dev"))
PHOTOS = (
    "face_recognition/examples/obama.jpg",
    "face_recognition/examples/biden.jpg",
    "face_recognition/examples/knn_examples/train/rose_leslie/img1.jpg",
    "face_recognition/examples/knn_examples/train/kit_harington/john1.jpeg",
    "face_recognition/examples/knn_examples/train/alex_lacamoire/img1.jpg",
    "face_recognition/examples/lin-manuel-miranda.png",
)
FPS, SIZE = 25, (640, 480)


def still(photo: Path) -> np.ndarray:
    image = Image.open(photo).convert("RGB")
    image.thumbnail(SIZE)
    frame = Image.new("RGB", SIZE, (90, 90, 90))
    frame.paste(image, ((SIZE[0] - image.width) // 2, (SIZE[1] - image.height) // 2))
    return np.asarray(frame)


def make_clip(path: Path, scene: float) -> int:
    """The clip; returns its frame count."""
    frames = 0
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 2_000_000
        for rel in PHOTOS:
            pixels = still(DEV / rel)
            for _ in range(int(scene * FPS)):
                # a little sensor noise, so that frames differ as camera frames do
                noisy = np.clip(pixels + np.random.randint(-3, 4, pixels.shape), 0, 255)
                out.mux(stream.encode(av.VideoFrame.from_ndarray(noisy.astype(np.uint8))))
                frames += 1
        out.mux(stream.encode(None))
    return frames


def decode_only(path: Path) -> float:
    started = time.perf_counter()
    n = 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frame.to_ndarray(format="rgb24")
            n += 1
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scene", type=float, default=10.0, help="seconds per photo")
    parser.add_argument("--rates", default="1,2,4", help="sampling rates (frames/s)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="facesearch-video-bench-"))
    clip = folder / "clip.mp4"
    frames = make_clip(clip, args.scene)
    minutes = frames / FPS / 60
    baseline = decode_only(clip)
    detector, embedder = DlibFaceDetector(), DlibFaceEmbedder()
    runs: list[dict[str, Any]] = []
    for rate in [float(r) for r in args.rates.split(",")]:
        rules = VideoRules(
            sample_fps=rate,
            max_seconds=3600,
            max_frames=100_000,
            max_decode_seconds=3600,
            seconds_per_face=10.0,
            track_similarity=0.9,
            max_pixels=60_000_000,
        )
        scan = scan_video(clip, rules, detector, embedder)
        runs.append(
            {
                "sample_fps": rate,
                "seconds": round(scan.seconds, 2),
                "frames_decoded_per_s": round(scan.frames_decoded / scan.seconds, 1),
                "frames_analysed_per_s": round(scan.frames_sampled / scan.seconds, 2),
                "ratio_decoded_to_decode_only": round(
                    scan.frames_decoded / scan.seconds / baseline, 3
                ),
                "faces_detected_per_min": round(scan.faces_detected / minutes, 1),
                "faces_indexed_per_min": round(len(scan.appearances) / minutes, 1),
                "appearances_true": len(PHOTOS) * max(1, int(np.ceil(args.scene / 10.0))),
                "tracks": scan.tracks,
            }
        )
    with FaceSearch(Settings(home=folder / "home", workers=1)) as engine:
        engine.add_source(
            Source(
                name="cctv",
                lawful_basis="legitimate_interests",
                special_category_condition="legal_claims",
                retention_days=30,
            )
        )
        started = time.perf_counter()
        report = engine.ingest([clip], source="cctv")
        ingest_seconds = time.perf_counter() - started
    out = {
        "cpus": os.cpu_count(),
        "clip": {"frames": frames, "fps": FPS, "size": SIZE, "minutes": round(minutes, 2)},
        "decode_only_frames_per_s": round(baseline, 1),
        "runs": runs,
        "ingest_default_rate": {
            "seconds": round(ingest_seconds, 2),
            "realtime_factor": round(frames / FPS / ingest_seconds, 2),
            "faces_indexed": report.faces_indexed,
            "video_faces_detected": report.video_faces_detected,
            "failed": report.failed,
        },
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
