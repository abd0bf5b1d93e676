"""The per-image work of ingest: decode, detect, filter, embed. Runs in worker processes."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from facesearch.config import Faces
from facesearch.domain import DetectedFace
from facesearch.errors import InvalidInput
from facesearch.imaging import DecodedImage, DecodeLimits, decode_image, perceptual_hash
from facesearch.vision.embedding import embed_images
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


@dataclass(frozen=True, slots=True)
class _Found:
    """An image decoded, its faces found and chosen: all that is left is to embed them."""

    sha256: str
    bytes: int
    decoded: DecodedImage
    faces: list[DetectedFace]
    skipped: list[dict[str, Any]]

    def analysis(self, embeddings: npt.NDArray[np.float32]) -> Analysis:
        decoded = self.decoded
        return Analysis(
            sha256=self.sha256,
            width=decoded.width,
            height=decoded.height,
            format=decoded.format,
            bytes=self.bytes,
            faces=self.faces,
            embeddings=embeddings,
            skipped=self.skipped,
            phash=perceptual_hash(decoded.pixels),
        )


def _find(
    data: bytes, sha256: str, limits: DecodeLimits, rules: Faces, detector: FaceDetector
) -> _Found:
    decoded = decode_image(data, limits)
    faces, skipped = select_faces(detector.detect_faces(decoded.pixels), rules)
    return _Found(sha256, len(data), decoded, faces, skipped)


def analyse(
    data: bytes,
    sha256: str,
    limits: DecodeLimits,
    rules: Faces,
    detector: FaceDetector,
    embedder: FaceEmbedder,
) -> Analysis:
    """Decode and index one file's faces. Raises InvalidInput for a file that cannot be used."""
    found = _find(data, sha256, limits, rules, detector)
    return found.analysis(embedder.embed_faces(found.decoded.pixels, found.faces))


def _reason(exc: Exception) -> str:
    if isinstance(exc, InvalidInput):
        return str(exc)
    return f"cannot analyse image: {type(exc).__name__}: {exc}"


def analyse_batch(
    files: Sequence[tuple[bytes, str]],
    limits: DecodeLimits,
    rules: Faces,
    detector: FaceDetector,
    embedder: FaceEmbedder,
) -> list[Analysis | str]:
    """Each file's Analysis, or the reason it could not be used, in order. The faces of
    all the files (and their mirrors) are embedded in one batch; one bad file never stops
    the others, whatever fails on it (a decoder or a model can trip over a damaged image):
    when the batch fails, its images are embedded one by one to find which."""
    out: list[Analysis | str] = []
    found: list[tuple[int, _Found]] = []
    for data, sha256 in files:
        try:
            found.append((len(out), _find(data, sha256, limits, rules, detector)))
            out.append("")
        except Exception as exc:  # reported per file: the ingest goes on
            out.append(_reason(exc))
    try:
        vectors = embed_images(embedder, [(f.decoded.pixels, f.faces) for _, f in found])
        for (at, one), embeddings in zip(found, vectors, strict=True):
            out[at] = one.analysis(embeddings)
    except Exception:
        for at, one in found:
            try:
                out[at] = one.analysis(embedder.embed_faces(one.decoded.pixels, one.faces))
            except Exception as exc:
                out[at] = _reason(exc)
    return out


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


def analyse_in_worker(files: Sequence[tuple[bytes, str]]) -> list[Analysis | str]:
    """For each file its Analysis, or the reason it could not be used (a string crosses
    processes); the faces of all the files embedded in one batch."""
    return analyse_batch(files, _WORKER.limits, _WORKER.rules, _WORKER.detector, _WORKER.embedder)
