"""Face crops, made on demand from the stored image and kept in a bounded memory cache."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Iterable

from PIL import Image

from facesearch.domain import BoundingBox
from facesearch.imaging import DecodeLimits, decode_image

THUMB_SIZE = 160
IMAGE_THUMB_SIZE = 320  # a whole image on a result tile
MARGIN = 0.3  # of the face box on each side: a little context around the face


def crop_face(data: bytes, box: BoundingBox, limits: DecodeLimits) -> bytes:
    pixels = decode_image(data, limits).pixels
    height, width = pixels.shape[:2]
    mx, my = int(box.width * MARGIN), int(box.height * MARGIN)
    x1, y1 = max(0, box.x1 - mx), max(0, box.y1 - my)
    x2, y2 = min(width, box.x2 + mx), min(height, box.y2 + my)
    crop = Image.fromarray(pixels[y1:y2, x1:x2])
    crop.thumbnail((THUMB_SIZE, THUMB_SIZE))
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=85)
    return out.getvalue()


def shrink_image(data: bytes, limits: DecodeLimits) -> bytes:
    """The whole image (EXIF orientation applied, so face boxes fit it once scaled), at
    most IMAGE_THUMB_SIZE px on its longer side, as JPEG."""
    image = Image.fromarray(decode_image(data, limits).pixels)
    image.thumbnail((IMAGE_THUMB_SIZE, IMAGE_THUMB_SIZE))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


class ThumbnailCache:
    """Least recently used face crops, up to ``max_bytes`` in all."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[int, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, face_id: int) -> bytes | None:
        with self._lock:
            data = self._items.get(face_id)
            if data is not None:
                self._items.move_to_end(face_id)
            return data

    def put(self, face_id: int, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(face_id, None)
            self._size -= len(old) if old else 0
            self._items[face_id] = data
            self._size += len(data)
            while self._size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    def discard(self, face_ids: Iterable[int]) -> None:
        """Forget the crops of these faces (erased or expired)."""
        with self._lock:
            for face_id in face_ids:
                old = self._items.pop(face_id, None)
                self._size -= len(old) if old else 0

    @property
    def size(self) -> int:
        return self._size
