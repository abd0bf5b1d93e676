"""Embedding in batches: the faces of several images, and their mirrors, in one call.

Every embedder here cuts aligned chips from an image (``chips``) and runs a network over
a stack of chips (``describe``, raw descriptors); what they share lives in
``ChipEmbedder``: the mirror chips join the batch, each face's vector is the sum of its
two descriptors scaled to unit length, and a batch of images is cut back per image. A
network gives the same descriptor for a chip whatever else is in its batch, so batching
changes speed, not vectors (tests/integration/test_batch_embedding.py).

``embed_images`` serves any ``FaceEmbedder``: one without a batch method (an operator's
own adapter that only has ``embed_faces``) is called image by image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facesearch.domain import DetectedFace, ModelId
from facesearch.vision.align import flip, normalize
from facesearch.vision.ports import Embeddings, FaceEmbedder, RGBImage

ImageFaces = tuple[RGBImage, Sequence[DetectedFace]]


def flip_averaged(raw: Embeddings, count: int, flip_average: bool) -> Embeddings:
    """Unit vectors from raw descriptors: of ``count`` chips, then (if set) their mirrors."""
    if flip_average:
        raw = raw[:count] + raw[count:]
    return normalize(raw)


class ChipEmbedder:
    """The batch logic of an embedder that has ``chips`` and ``describe``."""

    model: ModelId
    flip_average: bool

    def chips(self, image: RGBImage, faces: Sequence[DetectedFace]) -> list[RGBImage]:
        raise NotImplementedError

    def describe(self, chips: Sequence[RGBImage]) -> Embeddings:
        """The network's raw descriptors of aligned chips (not averaged, not scaled)."""
        raise NotImplementedError

    def embed_faces(self, image: RGBImage, faces: Sequence[DetectedFace]) -> Embeddings:
        return self.embed_images([(image, faces)])[0]

    def embed_images(self, items: Sequence[ImageFaces]) -> list[Embeddings]:
        """One row per face for each image, from one call of the network."""
        per_image = [self.chips(image, faces) if faces else [] for image, faces in items]
        chips = [chip for group in per_image for chip in group]
        if not chips:
            return [np.empty((0, self.model.dim), dtype=np.float32) for _ in items]
        batch = chips + [flip(c) for c in chips] if self.flip_average else chips
        vectors = flip_averaged(self.describe(batch), len(chips), self.flip_average)
        bounds = np.cumsum([len(group) for group in per_image])[:-1]
        return [part.astype(np.float32, copy=False) for part in np.split(vectors, bounds)]


def embed_images(embedder: FaceEmbedder, items: Sequence[ImageFaces]) -> list[Embeddings]:
    """The faces of several images embedded, in one batch when the embedder batches."""
    batched = getattr(embedder, "embed_images", None)
    if callable(batched):
        out: list[Embeddings] = batched(items)
        return out
    return [embedder.embed_faces(image, faces) for image, faces in items]
