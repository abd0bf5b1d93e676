"""Shared by the accuracy benches: the dev photos, their labels, and model variants.

Not a benchmark itself. The dev set is ``../shared/data/faces-dev`` next to the checkout
(or ``FACESEARCH_DEV``). Labels are unique only within one source, so every pair and
every gallery built here stays inside one source.

Descriptors are cached on disk (``bench/.cache``), keyed by the pixels, the landmarks and
the mirror flag, so variants that align a face the same way share the network's work.
The cache changes no result: a hit returns the very descriptor the network gave before.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dlib
import face_recognition_models
import numpy as np

from facesearch.domain import BoundingBox, DetectedFace
from facesearch.vision.align import flip, normalize, sharpness
from facesearch.vision.dlib_models import (
    CHIP_PADDING,
    CHIP_SIZE,
    DlibFaceDetector,
    DlibFaceEmbedder,
)
from facesearch.vision.onnx.retinaface import RetinaFaceDetector

ROOT = Path(__file__).resolve().parent.parent
DEV = Path(os.environ.get("FACESEARCH_DEV", ROOT.parent / "shared" / "data" / "faces-dev"))
CACHE = ROOT / "bench" / ".cache"
PAIR_FILES = ("pairs_lfw_view1_clean.csv", "pairs_deepface_master.csv")

# Copies of one photo (the dev README says so): kept out of galleries and pair sets, or a
# probe would "find" its own photo at another size.
COPIES = {
    "face_recognition/examples/obama-480p.jpg": "same photo as obama-240p.jpg",
    "face_recognition/examples/obama-720p.jpg": "same photo as obama-240p.jpg",
    "face_recognition/examples/obama-1080p.jpg": "same photo as obama-240p.jpg",
    "face_recognition/tests/test_images/32bit.png": "same photo as obama2.jpg",
    "deepface/img11_reflection.jpg": "img11.jpg with a mirrored copy added",
}
# The photo each resized or re-encoded copy is a copy of (manifest.csv's notes: the four
# letterboxed video frames are all of examples/obama.jpg). img11_reflection is a new
# picture made from img11, not a copy of it.
COPIES_OF = {
    f"face_recognition/examples/obama-{size}.jpg": "face_recognition/examples/obama.jpg"
    for size in ("240p", "480p", "720p", "1080p")
} | {"face_recognition/tests/test_images/32bit.png": "face_recognition/examples/obama2.jpg"}
# Pairs of glint360k crops that are one photo twice (re-encoded, colour-shifted), found by
# the copy bench and confirmed by eye (result_bands.py counts them as copies, not errors).
COPIES_OF |= {
    f"glint360k_celebs/{a}": f"glint360k_celebs/{b}"
    for a, b in (
        ("James_Spader/3881.png", "James_Spader/3862.png"),
        ("James_Spader/3863.png", "James_Spader/3859.png"),
        ("Hugh_Jackman/2818.png", "Hugh_Jackman/2814.png"),
        ("Hugh_Jackman/2829.png", "Hugh_Jackman/2806.png"),
        ("Hugh_Jackman/2824.png", "Hugh_Jackman/2812.png"),
        ("Mark_Ruffalo/6278.png", "Mark_Ruffalo/6271.png"),
        ("Miley_Cyrus/6773.png", "Miley_Cyrus/6757.png"),
    )
}


def manifest() -> list[dict[str, str]]:
    with open(DEV / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def source_of(identity: str) -> str:
    return identity.split(":", 1)[0]


def labelled_photos() -> dict[str, list[tuple[str, str]]]:
    """Per source: (path, identity) of every labelled one-face photo, copies left out."""
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in manifest():
        if row["identity"] and row["kind"] == "face" and row["path"] not in COPIES:
            out[source_of(row["identity"])].append((row["path"], row["identity"]))
    return dict(out)


# -- descriptors, cached ------------------------------------------------------------------
class DescriptorCache:
    """Raw network descriptors by (pixels, landmarks, mirrored), saved between runs."""

    def __init__(self) -> None:
        tag = f"dlib{dlib.__version__}-frm{version('face_recognition_models')}-{CHIP_SIZE}"
        self.path = CACHE / f"descriptors-{tag}-{CHIP_PADDING}.npz"
        self.data: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as npz:
                self.data = {k: npz[k] for k in npz.files}
        self.hits = self.misses = 0

    def save(self) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, **self.data)
        os.replace(tmp, self.path)


def face_key(image: np.ndarray, face: DetectedFace) -> str:
    digest = hashlib.sha1(image.tobytes()).hexdigest()[:20]
    points = ",".join(f"{round(x)}:{round(y)}" for x, y in face.landmarks)
    return f"{digest}/{image.shape[0]}x{image.shape[1]}/{points}"


class CachedDlibEmbedder:
    """DlibFaceEmbedder with the network's descriptors cached (same vectors, less work)."""

    def __init__(self, cache: DescriptorCache, flip_average: bool = True) -> None:
        self.inner = DlibFaceEmbedder(flip_average=flip_average)
        self.model = self.inner.model
        self.flip_average = flip_average
        self.cache = cache

    def embed_faces(self, image: np.ndarray, faces: Sequence[DetectedFace]) -> np.ndarray:
        if not faces:
            return np.empty((0, self.model.dim), dtype=np.float32)
        keys = [face_key(image, f) for f in faces]
        wanted = [(k, m) for k in keys for m in ((0, 1) if self.flip_average else (0,))]
        missing = [i for i, (k, m) in enumerate(wanted) if f"{k}|{m}" not in self.cache.data]
        self.cache.hits += len(wanted) - len(missing)
        self.cache.misses += len(missing)
        if missing:
            chips = dict(zip(keys, self.inner.chips(image, faces), strict=True))
            batch = [
                flip(chips[wanted[i][0]]) if wanted[i][1] else chips[wanted[i][0]] for i in missing
            ]
            for i, vec in zip(missing, self.inner.describe(batch), strict=True):
                self.cache.data[f"{wanted[i][0]}|{wanted[i][1]}"] = vec
        raw = np.stack(
            [
                sum(self.cache.data[f"{k}|{m}"] for m in ((0, 1) if self.flip_average else (0,)))
                for k in keys
            ]
        ).astype(np.float32)
        return normalize(raw)


class PlainDlibDetector:
    """dlib as face_recognition 1.3 calls it: HOG upsampled once on the whole image (no
    downscaling, no tight-crop fallback), 5-point landmarks, faces in dlib's order (so a
    probe's face 0 is the one ``face_encodings(image)[0]`` would take)."""

    name = "dlib-hog-plain"

    def __init__(self) -> None:
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(
            face_recognition_models.pose_predictor_five_point_model_location()
        )

    def detect_faces(self, image: np.ndarray) -> list[DetectedFace]:
        height, width = image.shape[:2]
        faces = []
        for rect in self._detector(image, 1):
            shape = self._predictor(image, rect)
            chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
            faces.append(
                DetectedFace(
                    box=BoundingBox(
                        max(0, rect.left()),
                        max(0, rect.top()),
                        min(width, rect.right() + 1),
                        min(height, rect.bottom() + 1),
                    ),
                    score=0.0,
                    landmarks=tuple(
                        (float(shape.part(i).x), float(shape.part(i).y)) for i in range(5)
                    ),
                    sharpness=sharpness(chip),
                )
            )
        return faces


# InsightFace's 112x112 ArcFace template: where the five points go on an aligned face.
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
     [70.7299, 92.2041]],
    dtype=np.float64,
)  # fmt: skip


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform (rotation, scale, shift) taking ``src`` points nearest
    to ``dst`` in least squares (Umeyama)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ flip @ vt
    scale = float(np.trace(np.diag(sig) @ flip) / (s**2).sum(axis=1).mean())
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


class FivePointDetector:
    """RetinaFace with dlib's landmarks placed from RetinaFace's own five points (no shape
    predictor): the dlib points' mean position in the ArcFace frame, mapped back through
    each face's similarity transform. The alternative the default was measured against."""

    name = "retinaface-5pt"

    def __init__(self, inner: Any, fit_on: list[np.ndarray]) -> None:
        self.inner = inner
        placed = []
        for image in fit_on:
            for face in inner.detect_faces(image):
                if face.five_points is None:
                    continue
                m = similarity(np.array(face.five_points), ARCFACE_112)
                pts = np.array(face.landmarks)
                placed.append(pts @ m[:, :2].T + m[:, 2])
        self.template = np.mean(placed, axis=0)

    def detect_faces(self, image: np.ndarray) -> list[DetectedFace]:
        out = []
        for face in self.inner.detect_faces(image):
            if face.five_points is not None:
                m = similarity(ARCFACE_112, np.array(face.five_points))
                pts = self.template @ m[:, :2].T + m[:, 2]
                face = replace(face, landmarks=tuple((float(x), float(y)) for x, y in pts))
            out.append(face)
        return out


@dataclass(frozen=True)
class Variant:
    """A way to run the models: detector settings and embedding options."""

    name: str
    upsample: int = 1
    tight_crop_fallback: bool = True
    flip_average: bool = True
    plain: bool = False
    detector: str = "dlib-hog"

    def parts(self, cache: DescriptorCache) -> dict[str, Any]:
        detector: Any
        if self.plain:
            detector = PlainDlibDetector()
        elif self.detector == "retinaface":
            detector = RetinaFaceDetector(tight_crop_fallback=self.tight_crop_fallback)
        elif self.detector == "retinaface-5pt":
            detector = FivePointDetector(RetinaFaceDetector(), fit_on=fit_photos())
        else:
            detector = DlibFaceDetector(
                upsample=self.upsample, tight_crop_fallback=self.tight_crop_fallback
            )
        return {"detector": detector, "embedder": CachedDlibEmbedder(cache, self.flip_average)}


DEFAULT = Variant(
    "engine default (RetinaFace, dlib landmarks in its box, tight-crop fallback, flip average)",
    detector="retinaface",
)
VARIANTS = {
    "default": DEFAULT,
    "retinaface-5pt": Variant(
        "RetinaFace, dlib's alignment from RetinaFace's five points (no shape predictor)",
        detector="retinaface-5pt",
    ),
    "hog": Variant("the default before RetinaFace (HOG upsample 1, tight-crop fallback, flip)"),
    "no-flip": Variant("no flip averaging", flip_average=False),
    "no-fallback": Variant("no tight-crop fallback", tight_crop_fallback=False),
    "upsample0": Variant("HOG upsample 0", upsample=0),
    "upsample2": Variant("HOG upsample 2", upsample=2),
    "plain-dlib": Variant(
        "plain dlib as face_recognition (HOG upsample 1, chip 150/0.25, no flip)",
        tight_crop_fallback=False,
        flip_average=False,
        plain=True,
    ),
}


def fit_photos(count: int = 150) -> list[np.ndarray]:
    """Where the five-point template is fitted: the first LFW photos of the manifest (the
    template is ten numbers, the mean of dlib's points over these faces)."""
    from facesearch.imaging import DecodeLimits, decode_image

    limits = DecodeLimits(max_bytes=50 * 1024 * 1024, max_pixels=60_000_000)
    rows = [r for r in manifest() if r["path"].startswith("lfw/")][:count]
    return [decode_image((DEV / r["path"]).read_bytes(), limits).pixels for r in rows]


def register_bench_source(fs: Any, name: str) -> None:
    """Register a benchmark's collection (ingest refuses sources without a lawful basis)."""
    from facesearch.domain import Source

    if fs.catalog.get_source(name) is None:
        fs.add_source(
            Source(
                name=name,
                lawful_basis="legitimate_interests",
                special_category_condition="archiving_research",
                retention_days=30,
            )
        )
