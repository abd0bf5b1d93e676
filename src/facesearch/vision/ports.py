"""The two model roles. An ONNX detector or embedder only has to satisfy these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from facesearch.domain import DetectedFace, ModelId

RGBImage = npt.NDArray[np.uint8]  # H x W x 3
Embeddings = npt.NDArray[np.float32]  # N x dim, unit length


class FaceDetector(Protocol):
    """Finds faces, with landmarks (see ``DetectedFace``), in an RGB image."""

    name: str

    def detect_faces(self, image: RGBImage) -> list[DetectedFace]:
        """Every face found, largest first."""
        ...


class FaceEmbedder(Protocol):
    """Turns detected faces into unit-length vectors compared by dot product."""

    model: ModelId

    def embed_faces(self, image: RGBImage, faces: Sequence[DetectedFace]) -> Embeddings:
        """One row per face, in the order given."""
        ...
