from __future__ import annotations

import io

import pytest
from PIL import Image

from facesearch.errors import InvalidInput
from facesearch.imaging import DecodeLimits, decode_image


def encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_formats_decode_to_rgb(fmt: str) -> None:
    decoded = decode_image(encode(Image.new("RGB", (40, 30), (200, 10, 10)), fmt), DecodeLimits())
    assert decoded.format == fmt
    assert decoded.pixels.shape == (30, 40, 3)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded = decode_image(encode(image, "JPEG", exif=exif), DecodeLimits())
    assert (decoded.width, decoded.height) == (20, 40)


def test_limits_refuse_before_decoding() -> None:
    data = encode(Image.new("L", (300, 300)), "PNG")
    with pytest.raises(InvalidInput, match="pixels"):
        decode_image(data, DecodeLimits(max_pixels=300 * 300 - 1))
    with pytest.raises(InvalidInput, match="bytes"):
        decode_image(data, DecodeLimits(max_bytes=len(data) - 1))


def test_gif_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    decoded = decode_image(buf.getvalue(), DecodeLimits())
    assert decoded.pixels[0, 0, 0] > 200 and decoded.pixels[0, 0, 2] < 50


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "0 bytes"),
        (b"hello world" * 10, "not a recognised image"),
        (b"%PDF-1.4 not an image", "not a recognised image"),
    ],
)
def test_bad_bytes(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        decode_image(data, DecodeLimits())
