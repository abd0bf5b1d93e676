"""An operator's own recognition model on ONNX Runtime (ArcFace-style, 112 x 112 chips).

Faces are aligned to the standard ArcFace template: from the five points in ArcFace order
when the detector gives them (RetinaFace), otherwise from the two eye centres of dlib's
5-point shape (dlib's HOG detector has no mouth corners). All faces of an image and their
mirror images go through the network in one call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facesearch.domain import DetectedFace, ModelId
from facesearch.errors import ConfigError, InvalidInput
from facesearch.vision.align import arcface_chip, eye_centres
from facesearch.vision.embedding import ChipEmbedder
from facesearch.vision.onnx.model_file import OnnxModelFile
from facesearch.vision.onnx.session import open_session
from facesearch.vision.ports import Embeddings, RGBImage


def alignment_points(face: DetectedFace) -> list[tuple[float, float]]:
    """The points a face is aligned from: its five ArcFace points, or its two eyes."""
    if face.five_points is not None:
        return list(face.five_points)
    if len(face.landmarks) == 5:
        return [(float(x), float(y)) for x, y in eye_centres(face.landmarks)]
    raise InvalidInput("a face without landmarks cannot be aligned for the ONNX embedder")


class OnnxFaceEmbedder(ChipEmbedder):
    """An ONNX recognition model; its id is the configured name and version."""

    def __init__(self, spec: OnnxModelFile, flip_average: bool = True, threads: int = 1) -> None:
        try:
            data = spec.path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"faces.onnx.path: cannot read {spec.path}: {exc.strerror}") from None
        try:
            self._session = open_session(data, intra_threads=threads)
        except Exception as exc:  # onnxruntime raises its own kinds for a bad file
            raise ConfigError(
                f"faces.onnx.path: {spec.path} is not a usable ONNX model: {exc}"
            ) from None
        self.spec = spec
        self.flip_average = flip_average
        feed = self._session.get_inputs()[0]
        self._input = feed.name
        shape = list(feed.shape)
        # Some exports fix the batch at one chip: they are fed one chip per call.
        self._one_at_a_time = len(shape) == 4 and shape[0] == 1
        # Channels last when the last axis is 3 and the second is not.
        self._channels_last = len(shape) == 4 and shape[3] == 3 and shape[1] != 3
        sides = shape[1:3] if self._channels_last else shape[2:4]
        fixed = [s for s in sides if isinstance(s, int)]
        if fixed and fixed != [spec.input_size] * len(fixed):
            raise ConfigError(
                f"faces.onnx.input_size is {spec.input_size} but {spec.path.name} takes "
                f"{'x'.join(str(s) for s in sides)} chips"
            )
        self._mean = np.array(spec.mean, dtype=np.float32)
        self._std = np.array(spec.std, dtype=np.float32)
        probe = self._run(np.zeros((1, spec.input_size, spec.input_size, 3), np.uint8))
        if probe.shape != (1, spec.dim):
            raise ConfigError(
                f"faces.onnx.dim is {spec.dim} but {spec.path.name} gives vectors of shape "
                f"{tuple(probe.shape[1:])}"
            )
        variant = f"arcface{spec.input_size}" + ("+flip" if flip_average else "")
        self.model = ModelId(
            name=spec.name, version=f"{spec.version}/{variant}", dim=spec.dim, metric="cosine"
        )

    def _run(self, chips: np.ndarray) -> Embeddings:
        batch = (chips.astype(np.float32) - self._mean) / self._std
        if not self._channels_last:
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        calls = [batch[i : i + 1] for i in range(len(batch))] if self._one_at_a_time else [batch]
        outs = [self._session.run(None, {self._input: call})[0] for call in calls]
        return np.concatenate(outs).astype(np.float32).reshape(len(chips), -1)

    def chips(self, image: RGBImage, faces: Sequence[DetectedFace]) -> list[RGBImage]:
        size = self.spec.input_size
        return [arcface_chip(image, alignment_points(face), size) for face in faces]

    def describe(self, chips: Sequence[RGBImage]) -> Embeddings:
        if not chips:
            return np.empty((0, self.model.dim), dtype=np.float32)
        return self._run(np.stack(chips))
