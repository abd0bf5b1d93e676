"""Checks on an uploaded image before anything decodes it: size, content type, pixels."""

from __future__ import annotations

import io
import warnings

from PIL import Image
from starlette.datastructures import UploadFile

from facesearch.api.errors import ApiError
from facesearch.errors import InvalidInput
from facesearch.imaging import DecodeLimits, bomb_message

ACCEPTED_TYPES = frozenset({"application/octet-stream", ""})
FORM_ROOM = 64 * 1024  # multipart framing and form fields around the largest image


async def read_upload(upload: UploadFile, limits: DecodeLimits) -> bytes:
    """The upload's bytes, or a 4xx: 413 over a limit, 415 for a non-image content type."""
    ctype = (upload.content_type or "").split(";")[0].strip().lower()
    if not (ctype.startswith("image/") or ctype in ACCEPTED_TYPES):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the file was sent as {ctype}; send an image (JPEG, PNG, WebP, GIF, BMP, TIFF)",
        )
    if upload.size is not None and upload.size > limits.max_bytes:
        raise too_large(f"the file is {upload.size} bytes, over the limit of {limits.max_bytes}")
    data = await upload.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise too_large(f"the file is over the limit of {limits.max_bytes} bytes")
    if not data:
        raise InvalidInput("the uploaded file is empty")
    check_pixels(data, limits)
    return data


def check_pixels(data: bytes, limits: DecodeLimits) -> None:
    """Reads only the image header; refuses images whose pixel count is over the limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bombs and damaged metadata: see imaging
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError as exc:
        raise too_large(bomb_message(str(exc), limits)) from None
    except Exception:  # a damaged header can fail anyhow: decoding says why, as a 400
        return
    if width * height > limits.max_pixels:
        raise too_large(
            f"the image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{limits.max_pixels}"
        )


def too_large(message: str) -> ApiError:
    return ApiError(413, "too_large", message)
