"""POST /v1/access-requests: the operator's "am I in here?" report, and the photo is never
written anywhere: not spooled to a temporary file, not in the home, not in a log."""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facesearch import FaceSearch
from tests.api.governance_app import gallery_copy
from tests.app_gallery import OBAMA_PROBE, PURPOSE, Gallery, bearer

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | getattr(os, "O_TMPFILE", 0)


class WriteWatch:
    """Python's audit hooks see every file this process opens, the temporary ones too."""

    def __init__(self) -> None:
        self.active = False
        self.writes: list[str] = []
        sys.addaudithook(self._hook)  # cannot be removed: it only listens while active

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or event not in ("open", "tempfile.mkstemp"):
            return
        if event == "tempfile.mkstemp":
            self.writes.append(str(args[0]))
            return
        path, mode, flags = args
        if (mode and any(c in mode for c in "wax+")) or (flags or 0) & WRITE_FLAGS:
            self.writes.append(str(path))


WATCH = WriteWatch()


@pytest.fixture
def app(gallery: Gallery, tmp_path: Path) -> Iterator[tuple[TestClient, FaceSearch]]:
    with gallery_copy(gallery, tmp_path) as pair:
        yield pair


def big_photo(gallery: Gallery) -> bytes:
    """The Obama probe enlarged to a PNG over 1 MB: above Starlette's 1 MB spool limit."""
    image = Image.open(gallery.dev / OBAMA_PROBE).convert("RGB")
    image = image.resize((image.width * 2, image.height * 2), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG")
    data = out.getvalue()
    assert len(data) > 1024 * 1024
    return data


def files_changed_since(root: Path, since: float) -> Iterator[Path]:
    for folder, _, names in os.walk(root, onerror=lambda _: None):
        for name in names:
            path = Path(folder) / name
            try:
                if path.is_file() and path.stat().st_mtime >= since:
                    yield path
            except OSError:
                continue


def test_an_access_request_finds_the_person_and_leaves_no_trace_of_the_photo(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    photo = big_photo(gallery)
    template = engine.probe(photo).embeddings[0].astype("float32").tobytes()
    admin = bearer(gallery.keys["admin"])
    # The control: a search upload this size is spooled to a temporary file by Starlette,
    # so the watch does see such writes.
    WATCH.active, WATCH.writes = True, []
    client.post(
        "/v1/search", files={"image": ("p.png", photo, "image/png")}, data=PURPOSE, headers=admin
    )
    WATCH.active = False
    assert WATCH.writes, "the write watch should see Starlette's spooled temporary file"

    started = time.time() - 1
    WATCH.active, WATCH.writes = True, []
    response = client.post(
        "/v1/access-requests", files={"image": ("me.png", photo, "image/png")}, headers=admin
    )
    WATCH.active = False
    assert response.status_code == 200, response.text
    assert WATCH.writes == [], "the access request wrote files"
    assert response.headers["cache-control"] == "no-store"
    report = response.json()
    assert report["images_found"] >= 1
    obama = [i for i in report["images"] if i["copies"][0]["source_url"].endswith("/obama.jpg")]
    assert obama and obama[0]["similarity"] >= report["threshold"]
    assert report["threshold"] == engine.settings.governance.strict_threshold
    copy = obama[0]["copies"][0]
    assert copy["source"] == "newsroom" and copy["lawful_basis"].startswith("Art. 6(1)(f)")
    assert copy["kept_until"] and any("Art. 17" in r for r in report["your_rights"])

    run = photo[len(photo) // 2 : len(photo) // 2 + 64]
    scanned = list(files_changed_since(Path(tempfile.gettempdir()), started))
    scanned += [p for p in engine.home.rglob("*") if p.is_file()]
    assert any(p.is_relative_to(engine.home) for p in scanned)
    for path in scanned:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        assert run not in data, f"{path} holds bytes of the photo"
        assert template not in data, f"{path} holds the photo's template"

    last = list(engine.audit.entries(action="access_request"))[-1]
    assert set(last.details) == {"request_id", "probe_sha256", "results"}
    assert last.details["results"] == report["images_found"]
    assert last.details["request_id"] == report["request_id"]


def test_the_report_comes_as_a_self_contained_html_document(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, _ = app
    photo = (gallery.dev / OBAMA_PROBE).read_bytes()
    response = client.post(
        "/v1/access-requests?format=html",
        files={"image": ("me.jpg", photo, "image/jpeg")},
        data={"face": "0"},
        headers=bearer(gallery.keys["admin"]),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "attachment" in response.headers["content-disposition"]
    page = response.text
    assert "what this system holds about you" in page and "obama.jpg" in page
    for tag in ("<script", "<img", "<link", "src="):
        assert tag not in page


def test_bad_access_requests_get_a_clear_4xx(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    admin = bearer(gallery.keys["admin"])
    before = len(list(engine.audit.entries(action="access_request")))
    no_photo = client.post("/v1/access-requests", data={"face": "0"}, headers=admin)
    assert no_photo.status_code == 400 and "image" in no_photo.json()["error"]["message"]
    coffee = (gallery.dev / "skimage/coffee.png").read_bytes()
    no_face = client.post(
        "/v1/access-requests", files={"image": ("c.png", coffee, "image/png")}, headers=admin
    )
    assert no_face.status_code == 422 and no_face.json()["error"]["code"] == "no_face_found"
    pdf = client.post(
        "/v1/access-requests", files={"image": ("x.pdf", b"%PDF", "application/pdf")}, headers=admin
    )
    assert pdf.status_code == 415
    face = client.post(
        "/v1/access-requests",
        files={"image": ("p.jpg", (gallery.dev / OBAMA_PROBE).read_bytes(), "image/jpeg")},
        data={"face": "seven"},
        headers=admin,
    )
    assert face.status_code == 400 and "whole number" in face.json()["error"]["message"]
    assert len(list(engine.audit.entries(action="access_request"))) == before
