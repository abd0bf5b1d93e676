"""Safe image decoding: size and pixel limits, allowed formats, EXIF orientation.

Decoding trusts the file's bytes, never its name, so a WebP saved as ``.jpg`` decodes
as WebP. Everything that can go wrong becomes :class:`InvalidInput` with a reason a
person can act on.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from facesearch.errors import InvalidInput

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 60_000_000
    # No face fits in a strip: an image thinner than this, or longer than wide (or wide
    # than long) by more than this ratio, is refused before its pixels are decoded.
    min_side: int = 16
    max_aspect: float = 50.0


@dataclass(frozen=True, slots=True)
class DecodedImage:
    pixels: npt.NDArray[np.uint8]  # H x W x 3 RGB, orientation applied
    format: str
    width: int
    height: int


def decode_image(data: bytes, limits: DecodeLimits) -> DecodedImage:
    """Decode bytes to RGB pixels, or raise InvalidInput saying why not."""
    if not data:
        raise InvalidInput("empty file (0 bytes)")
    if len(data) > limits.max_bytes:
        raise InvalidInput(f"file is {len(data)} bytes, over the limit of {limits.max_bytes}")
    try:
        with warnings.catch_warnings():
            # Pillow warns before it errors on bombs (we apply our own limit instead) and
            # on damaged metadata it skips (corrupt EXIF): nothing a caller can act on.
            warnings.simplefilter("ignore")
            image: Image.Image = Image.open(io.BytesIO(data))
            fmt = image.format or "unknown"
            if fmt not in ALLOWED_FORMATS:
                raise InvalidInput(f"unsupported image format {fmt}")
            check_size(*image.size, limits)
            image.seek(0)  # GIF, TIFF: the first frame
            image.load()
            image = ImageOps.exif_transpose(image) or image
            rgb = image.convert("RGB")
    except InvalidInput:
        raise
    except UnidentifiedImageError:
        raise InvalidInput("not a recognised image file") from None
    except Image.DecompressionBombError as exc:
        # Pillow refuses huge headers itself before we see the size (over twice its own
        # MAX_IMAGE_PIXELS): say it in our words, with our limit.
        raise InvalidInput(bomb_message(str(exc), limits)) from None
    except MemoryError:
        raise InvalidInput("cannot decode image: it needs more memory than is available") from None
    except Exception as exc:  # a damaged file can make any decoder step fail
        raise InvalidInput(f"cannot decode image: {exc or type(exc).__name__}") from None
    pixels = np.asarray(rgb, dtype=np.uint8)
    check_size(rgb.width, rgb.height, limits)  # a decoder may disagree with its header
    return DecodedImage(pixels=pixels, format=fmt, width=rgb.width, height=rgb.height)


# A row or column at the edge whose grey levels span no more than this is a bar (a
# letterbox or a frame added around a copy), trimmed before hashing.
BAR_RANGE = 24


def perceptual_hash(pixels: npt.NDArray[np.uint8]) -> str:
    """The image's 64-bit DCT perceptual hash (imagehash's phash) as 16 hex digits, after
    trimming uniform bars at its edges: copies of one photo (resized, recompressed,
    letterboxed, cropped a little) differ in a few bits, different photos in about 32."""
    import imagehash

    grey = pixels.mean(axis=2) if pixels.ndim == 3 else pixels.astype(np.float64)

    def span(lines: npt.NDArray[np.float64]) -> tuple[int, int]:
        busy = np.flatnonzero(lines.max(axis=1) - lines.min(axis=1) > BAR_RANGE)
        return (int(busy[0]), int(busy[-1]) + 1) if len(busy) else (0, len(lines))

    (top, bottom), (left, right) = span(grey), span(grey.T)
    return str(imagehash.phash(Image.fromarray(pixels[top:bottom, left:right])))


def hash_distance(a: str, b: str) -> int:
    """Bits that differ between two perceptual hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def check_size(width: int, height: int, limits: DecodeLimits) -> None:
    """Refuse dimensions that cost too much to decode or cannot hold a face."""
    if width * height > limits.max_pixels:
        raise InvalidInput(
            f"image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{limits.max_pixels} (possible decompression bomb)"
        )
    short, long = min(width, height), max(width, height)
    if short < limits.min_side:
        raise InvalidInput(
            f"image is {width}x{height}: its shorter side is under {limits.min_side} px, "
            "too small to hold a face"
        )
    if long > short * limits.max_aspect:
        raise InvalidInput(
            f"image is {width}x{height}: one side is over {limits.max_aspect:g} times the "
            "other, too narrow to search for faces"
        )


def bomb_message(pillow: str, limits: DecodeLimits) -> str:
    """Pillow's DecompressionBombError text, as facesearch says it."""
    found = re.search(r"\((\d+) pixels\)", pillow)
    size = f"{found.group(1)} pixels" if found else "too many pixels"
    # Pillow's own ceiling is twice its MAX_IMAGE_PIXELS, whatever ours is set to.
    ceiling = 2 * int(Image.MAX_IMAGE_PIXELS or limits.max_pixels)
    limit = min(limits.max_pixels, ceiling)
    return f"image is {size}, over the limit of {limit} (possible decompression bomb)"


def read_limited(path: str, limits: DecodeLimits) -> bytes:
    """Read a file, refusing it before reading when it is over the byte limit."""
    try:
        size = os.path.getsize(path)
        if size > limits.max_bytes:
            raise InvalidInput(f"file is {size} bytes, over the limit of {limits.max_bytes}")
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"is a directory: {path}") from None
    except PermissionError:
        raise InvalidInput(f"permission denied: {path}") from None
