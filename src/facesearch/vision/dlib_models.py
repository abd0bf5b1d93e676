"""dlib's HOG detector, 5-point shape predictor and ResNet embedder.

Model files come from the ``face_recognition_models`` package (CC0), installed from PyPI:
nothing is downloaded at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

import dlib
import face_recognition_models
import numpy as np
from PIL import Image

from facesearch.domain import BoundingBox, DetectedFace, ModelId
from facesearch.vision.align import sharpness
from facesearch.vision.embedding import ChipEmbedder
from facesearch.vision.ports import Embeddings, RGBImage

CHIP_SIZE = 150
CHIP_PADDING = 0.25
# Faces on a detection image with a longer side above this are found on a downscaled copy:
# HOG cost grows with pixels, and faces in such photos are large enough to survive it.
DETECT_MAX_SIDE = 1600
# Images up to this size that show no face are tried again as a tight crop of a face.
TIGHT_CROP_MAX_SIDE = 256


def _shape_points(shape: Any) -> tuple[tuple[float, float], ...]:
    return tuple((float(shape.part(i).x), float(shape.part(i).y)) for i in range(shape.num_parts))


class DlibFaceDetector:
    """HOG face detector with dlib's 5-point landmarks.

    Small images are upsampled once, large ones downscaled. An image that looks like a
    tight face crop (small, no face found) is padded and tried again; if the detector
    still finds nothing, the whole crop is taken as the face (marked ``fallback``).
    """

    name = "dlib-hog"

    def __init__(self, upsample: int = 1, tight_crop_fallback: bool = True) -> None:
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(
            face_recognition_models.pose_predictor_five_point_model_location()
        )
        self.upsample = upsample
        self.tight_crop_fallback = tight_crop_fallback

    def _run(self, image: RGBImage, upsample: int) -> list[tuple[Any, float]]:
        rects, scores, _ = self._detector.run(image, upsample, 0.0)
        return list(zip(rects, scores, strict=True))

    def detect_faces(self, image: RGBImage) -> list[DetectedFace]:
        height, width = image.shape[:2]
        if height == 0 or width == 0:
            return []
        longest = max(height, width)
        scale = 1.0
        work = image
        if longest > DETECT_MAX_SIDE:
            scale = DETECT_MAX_SIDE / longest
            # A thin strip must not round to a side of zero (Pillow refuses that size).
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        upsample = self.upsample if max(work.shape[:2]) <= 1000 else 0
        found = [
            (
                dlib.rectangle(
                    round(r.left() / scale),
                    round(r.top() / scale),
                    round(r.right() / scale),
                    round(r.bottom() / scale),
                ),
                s,
                False,
            )
            for r, s in self._run(work, upsample)
        ]
        if not found and self.tight_crop_fallback and longest <= TIGHT_CROP_MAX_SIDE:
            found = self._tight_crop(image)
        faces = []
        for rect, score, fallback in found:
            shape = self._predictor(image, rect)
            box = BoundingBox(
                max(0, rect.left()),
                max(0, rect.top()),
                min(width, rect.right() + 1),
                min(height, rect.bottom() + 1),
            )
            chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
            faces.append(
                DetectedFace(
                    box=box,
                    score=float(score),
                    landmarks=_shape_points(shape),
                    sharpness=sharpness(chip),
                    fallback=fallback,
                    # dlib's 5-point model has no mouth corners: no ArcFace points.
                    five_points=None,
                )
            )
        faces.sort(key=lambda f: f.box.area, reverse=True)
        return faces

    def _tight_crop(self, image: RGBImage) -> list[tuple[Any, float, bool]]:
        height, width = image.shape[:2]
        pad = max(height, width) // 2
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        hits = self._run(padded, 1)
        if hits:
            rect, score = max(hits, key=lambda h: h[0].area())
            return [
                (
                    dlib.rectangle(
                        rect.left() - pad, rect.top() - pad, rect.right() - pad, rect.bottom() - pad
                    ),
                    score,
                    False,
                )
            ]
        # An aligned crop: the face fills the frame less a margin.
        margin = round(min(height, width) * 0.12)
        return [
            (dlib.rectangle(margin, margin, width - margin - 1, height - margin - 1), 0.0, True)
        ]


def dlib_resnet_model(flip_average: bool) -> ModelId:
    """The id of dlib's ResNet as facesearch runs it, by dlib's runtime or its ONNX graph.

    Both runtimes share it: the converted graph gives dlib's own descriptors (cosine
    >= 0.9999 on the dev photos, tests/integration/test_onnx_dlib.py), so a home may take
    vectors from either. A runtime that failed that test would need an id of its own.
    """
    variant = "chip150p25" + ("+flip" if flip_average else "")
    return ModelId(
        name="dlib_face_recognition_resnet_model_v1",
        version=f"{version('face_recognition_models')}/{variant}",
        dim=128,
        metric="cosine",
    )


def face_chips(image: RGBImage, faces: Sequence[DetectedFace]) -> list[RGBImage]:
    """dlib's aligned 150 x 150 chips of ``faces``, from their five landmarks."""
    out = []
    for face in faces:
        rect = dlib.rectangle(face.box.x1, face.box.y1, face.box.x2 - 1, face.box.y2 - 1)
        points = dlib.points([dlib.point(round(x), round(y)) for x, y in face.landmarks])
        shape = dlib.full_object_detection(rect, points)
        out.append(dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
    return out


class DlibFaceEmbedder(ChipEmbedder):
    """dlib's ResNet (128-d), averaged with its mirror image and scaled to unit length."""

    def __init__(self, flip_average: bool = True) -> None:
        self._net = dlib.face_recognition_model_v1(
            face_recognition_models.face_recognition_model_location()
        )
        self.flip_average = flip_average
        self.model = dlib_resnet_model(flip_average)

    def chips(self, image: RGBImage, faces: Sequence[DetectedFace]) -> list[RGBImage]:
        return face_chips(image, faces)

    def describe(self, chips: Sequence[RGBImage]) -> Embeddings:
        if not chips:
            return np.empty((0, self.model.dim), dtype=np.float32)
        return np.asarray(self._net.compute_face_descriptor(list(chips)), dtype=np.float32)
