"""The per-image work of ingest: decode, detect, filter, embed. Runs in worker processes."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from facesearch.config import Faces
from facesearch.domain import DetectedFace
from facesearch.errors import InvalidInput
from facesearch.imaging import DecodeLimits, decode_image, perceptual_hash
from facesearch.vision.ports import FaceDetector, FaceEmbedder
from facesearch.vision.registry import ModelSpec


@dataclass(frozen=True, slots=True)
class Analysis:
    """What one image yielded: indexed faces with their embeddings, and skipped faces."""

    sha256: str
    width: int
    height: int
    format: str
    bytes: int
    faces: list[DetectedFace]
    embeddings: npt.NDArray[np.float32]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    phash: str | None = None  # perceptual hash: groups copies of one photo in results


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def select_faces(
    faces: list[DetectedFace], rules: Faces
) -> tuple[list[DetectedFace], list[dict[str, Any]]]:
    """Keep the faces worth indexing (largest first); say why each other one was skipped."""
    kept: list[DetectedFace] = []
    skipped: list[dict[str, Any]] = []
    for face in faces:
        reason = None
        if face.size < rules.min_size:
            reason = f"too small ({face.size} px < {rules.min_size})"
        elif face.sharpness < rules.min_sharpness:
            reason = f"too blurred (sharpness {face.sharpness:.1f} < {rules.min_sharpness})"
        elif len(kept) >= rules.max_per_image:
            reason = f"over the cap of {rules.max_per_image} faces per image"
        if reason is None:
            kept.append(face)
        else:
            skipped.append({"box": face.box.as_dict(), "reason": reason})
    return kept, skipped


def analyse(
    data: bytes,
    sha256: str,
    limits: DecodeLimits,
    rules: Faces,
    detector: FaceDetector,
    embedder: FaceEmbedder,
) -> Analysis:
    """Decode and index one file's faces. Raises InvalidInput for a file that cannot be used."""
    decoded = decode_image(data, limits)
    faces, skipped = select_faces(detector.detect_faces(decoded.pixels), rules)
    embeddings = embedder.embed_faces(decoded.pixels, faces)
    return Analysis(
        sha256=sha256,
        width=decoded.width,
        height=decoded.height,
        format=decoded.format,
        bytes=len(data),
        faces=faces,
        embeddings=embeddings,
        skipped=skipped,
        phash=perceptual_hash(decoded.pixels),
    )


def analyse_or_reason(
    data: bytes,
    sha256: str,
    limits: DecodeLimits,
    rules: Faces,
    detector: FaceDetector,
    embedder: FaceEmbedder,
) -> Analysis | str:
    """Analysis, or the reason the file could not be used: one bad file never stops an
    ingest, whatever fails on it (a decoder or a model can trip over a damaged image)."""
    try:
        return analyse(data, sha256, limits, rules, detector, embedder)
    except InvalidInput as exc:
        return str(exc)
    except Exception as exc:  # reported per file: the ingest goes on
        return f"cannot analyse image: {type(exc).__name__}: {exc}"


# -- workers --------------------------------------------------------------------------
# Each worker (a process, or a thread) loads its own models once; the pool passes only
# bytes in and plain results out. The slot is per thread (and so per process), set by the
# initializer in the thread that then runs the worker's jobs.
_WORKER = threading.local()


def init_worker(limits: DecodeLimits, rules: Faces, models: ModelSpec) -> None:
    # The engine's spec, so that workers embed with the model whose key the engine records.
    _WORKER.limits = limits
    _WORKER.rules = rules
    _WORKER.detector = models.build_detector()
    _WORKER.embedder = models.build_embedder()


def analyse_in_worker(data: bytes, sha256: str) -> Analysis | str:
    """Analysis, or the reason the file could not be used (a string crosses processes)."""
    return analyse_or_reason(
        data, sha256, _WORKER.limits, _WORKER.rules, _WORKER.detector, _WORKER.embedder
    )
