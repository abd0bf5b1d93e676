"""A strip of pixels (1x20000) sent to every endpoint that takes a photo: a 400 with the
reason, never a 500 or a dropped connection."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.app_gallery import PURPOSE, Gallery, bearer


def strip(size: tuple[int, int], fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 90, 60)).save(buf, format=fmt)
    return buf.getvalue()


ENDPOINTS = [
    ("/v1/search", dict(PURPOSE)),
    ("/v1/images", {"source": "lfw"}),
    ("/v1/erasures/review", {}),
    ("/v1/access-requests", {}),
    ("/v1/suppressions", {"consent_ref": "OBJ-1"}),
]


@pytest.mark.parametrize(("path", "fields"), ENDPOINTS)
@pytest.mark.parametrize(
    ("size", "fmt", "mime"), [((1, 20000), "PNG", "image/png"), ((20000, 1), "JPEG", "image/jpeg")]
)
def test_a_strip_is_refused_with_a_400(
    client: TestClient,
    gallery: Gallery,
    path: str,
    fields: dict[str, str],
    size: tuple[int, int],
    fmt: str,
    mime: str,
) -> None:
    answer = client.post(
        path,
        files={"image": (f"strip.{fmt.lower()}", strip(size, fmt), mime)},
        data=fields,
        headers=bearer(gallery.keys["admin"]),
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_input"
    assert f"{size[0]}x{size[1]}: its shorter side is under 16 px" in error["message"]


def test_an_upload_already_past_retention_is_refused(client: TestClient, gallery: Gallery) -> None:
    photo = gallery.dev / "face_recognition/examples/obama2.jpg"
    answer = client.post(
        "/v1/images",
        files={"image": ("old.jpg", photo.read_bytes(), "image/jpeg")},
        data={"source": "lfw", "captured_at": "2001-01-01"},
        headers=bearer(gallery.keys["admin"]),
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"] == (
        "the image could not be ingested: expired at ingest: captured 2001-01-01, source "
        "keeps 10y (expired 2010-12-30)"
    )
