"""dlib's face network on ONNX Runtime, batched: dlib's chips, the converted graph.

The chips are cut by dlib exactly as ``DlibFaceEmbedder`` cuts them, so only the runtime
that computes the network changes; all faces of an image and their mirror images go
through the network in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import face_recognition_models
import numpy as np

from facesearch.domain import DetectedFace
from facesearch.vision.dlib_models import dlib_resnet_model, face_chips
from facesearch.vision.embedding import ChipEmbedder
from facesearch.vision.onnx.dlib_convert import INPUT_NAME, cached_conversion, convert
from facesearch.vision.onnx.session import open_session
from facesearch.vision.ports import Embeddings, RGBImage


def converted_name() -> str:
    """The cache file of the converted graph: a new model package makes a new file."""
    return f"dlib_face_recognition_resnet_model_v1-{version('face_recognition_models')}.onnx"


def dlib_resnet_onnx(cache: Path | None) -> bytes:
    """The converted graph, from ``cache`` (converted there on first use) or made now."""
    source = Path(face_recognition_models.face_recognition_model_location())
    if cache is None:
        return convert(source)
    return cached_conversion(source, cache, converted_name())


class OnnxDlibEmbedder(ChipEmbedder):
    """dlib's ResNet (128-d) run by ONNX Runtime; same vectors, same model id as dlib's."""

    def __init__(
        self,
        flip_average: bool = True,
        *,
        cache: Path | None = None,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        self._session = open_session(
            dlib_resnet_onnx(cache), intra_threads=threads, prefer_gpu=device != "cpu"
        )
        self.flip_average = flip_average
        self.model = dlib_resnet_model(flip_average)

    def chips(self, image: RGBImage, faces: Sequence[DetectedFace]) -> list[RGBImage]:
        return face_chips(image, faces)

    def describe(self, chips: Sequence[RGBImage]) -> Embeddings:
        if not chips:
            return np.empty((0, self.model.dim), dtype=np.float32)
        batch = np.stack(chips).astype(np.float32)
        out: Embeddings = self._session.run(None, {INPUT_NAME: batch})[0]
        return out
