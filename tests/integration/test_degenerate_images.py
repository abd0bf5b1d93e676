"""Images no face fits in (a 1-pixel strip), huge declared sizes, and photos already past
their source's retention: each refused with its reason, the rest of the ingest goes on."""

from __future__ import annotations

import csv
import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesearch import FaceSearch, Settings
from facesearch.errors import InvalidInput
from facesearch.imaging import DecodeLimits, decode_image
from facesearch.vision.dlib_models import DlibFaceDetector

from ..conftest import REGISTER_ARGS

REAL = ["face_recognition/examples/obama.jpg", "face_recognition/examples/biden.jpg"]


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facesearch.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def encoded(size: tuple[int, int], fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 90, 60)).save(buf, format=fmt)
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares a size and holds no pixel data (a few dozen bytes)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IEND", b"")


def strips(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "tall": (folder / "tall-1x20000.png", encoded((1, 20000), "PNG")),
        "wide": (folder / "wide-20000x1.jpg", encoded((20000, 1), "JPEG")),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {name: path for name, (path, _) in files.items()}


def test_the_detector_never_fails_on_a_degenerate_size() -> None:
    detector = DlibFaceDetector()
    for shape in [(20000, 1), (1, 20000), (3, 100_000), (0, 5), (1, 1)]:
        faces = detector.detect_faces(np.full((*shape, 3), 128, dtype=np.uint8))
        assert all(f.box.x2 <= shape[1] and f.box.y2 <= shape[0] for f in faces)


@pytest.mark.parametrize(
    ("size", "fmt"), [((1, 20000), "PNG"), ((20000, 1), "JPEG"), ((12, 400), "PNG")]
)
def test_a_strip_is_refused_with_its_size(size: tuple[int, int], fmt: str) -> None:
    with pytest.raises(InvalidInput, match=f"image is {size[0]}x{size[1]}: .*too small"):
        decode_image(encoded(size, fmt), DecodeLimits())


def test_a_very_long_image_is_refused_and_a_panorama_is_not() -> None:
    with pytest.raises(InvalidInput, match="over 50 times the other"):
        decode_image(encoded((4000, 20), "PNG"), DecodeLimits())
    assert decode_image(encoded((4000, 400), "PNG"), DecodeLimits()).width == 4000


@pytest.mark.parametrize("side", [9000, 100_000])
def test_huge_declared_sizes_get_facesearchs_own_message(side: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_image(png_header(side, side), DecodeLimits())
    message = str(refused.value)
    assert f"{side * side} pixels, over the limit of 60000000" in message
    assert "possible decompression bomb" in message
    assert "DOS attack" not in message and "exceeds limit" not in message


def test_cli_ingest_lists_the_strips_and_ingests_the_photos(tmp_path: Path, dev: Path) -> None:
    folder = tmp_path / "mixed"
    bad = strips(folder)
    for rel in REAL:
        (folder / Path(rel).name).write_bytes((dev / rel).read_bytes())
    home = tmp_path / "home"
    assert cli("sources", "add", "mixed", *REGISTER_ARGS, home=home).returncode == 0
    report_file = tmp_path / "report.json"
    for workers in ("1", "2"):  # in this process, and in worker processes
        done = cli(
            "ingest", str(folder), "--source", "mixed", "--workers", workers,
            "--report", str(report_file), home=home,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr + done.stdout
        report = json.loads(report_file.read_text())
        assert report["failures"] == 2
        reasons = {Path(f["path"]).name: f["reason"] for f in report["failed"]}
        assert set(reasons) == {p.name for p in bad.values()}
        assert "1x20000: its shorter side is under 16 px" in reasons[bad["tall"].name]
        assert "20000x1: its shorter side is under 16 px" in reasons[bad["wide"].name]
        for path in bad.values():
            assert path.name in done.stdout  # listed with the reason
        if workers == "1":
            assert "2 new images" in done.stdout and "2 failed" in done.stdout
            assert report["images_added"] == 2 and report["faces_indexed"] == 2
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        stats = fs.stats()
        assert (stats["images"], stats["faces"]) == (2, 2)
        assert stats["index"]["consistent"]


def write_manifest(path: Path, rows: list[tuple[Path, str]]) -> None:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["path", "captured_at"])
        out.writerows((str(p), day) for p, day in rows)


def test_cli_refuses_images_already_past_retention(tmp_path: Path, dev: Path) -> None:
    home = tmp_path / "home"
    args = [a if a != "10y" else "5y" for a in REGISTER_ARGS]
    assert cli("sources", "add", "archive", *args, home=home).returncode == 0
    old, recent, undated = (dev / r for r in [*REAL, "deepface/img1.jpg"])
    manifest = tmp_path / "manifest.csv"
    write_manifest(manifest, [(old, "2001-01-01"), (recent, "2025-06-01"), (undated, "")])
    report_file = tmp_path / "report.json"
    done = cli(
        "ingest", str(manifest), "--source", "archive", "--workers", "1",
        "--report", str(report_file), home=home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 new images" in done.stdout and "1 failed" in done.stdout
    [failed] = json.loads(report_file.read_text())["failed"]
    assert failed["path"] == str(old)
    assert failed["reason"] == (  # the manifest row it came from, then why
        f"{manifest}:2: expired at ingest: captured 2001-01-01, source keeps 5y "
        "(expired 2005-12-31)"
    )
    assert "expired at ingest: captured 2001-01-01" in done.stdout
    # Nothing of the refused photo was stored, so the next retention run removes nothing.
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        assert fs.stats()["images"] == 2
        assert {Path(i.path).name for i in fs.list_images()} == {recent.name, undated.name}
        assert fs.run_retention().as_dict()["images_removed"] == 0
    # The same photo as a copy of a known image, with an old date, is refused as well.
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(recent.read_bytes())
    write_manifest(manifest, [(copy, "1990-05-05")])
    again = cli("ingest", str(manifest), "--source", "archive", "--json", home=home)
    assert again.returncode == 1  # nothing could be ingested: the run says so
    assert "could not be ingested" in again.stderr
    data = json.loads(again.stdout)
    assert data["copies_added"] == 0 and data["failures"] == 1
    assert data["failed"][0]["reason"].startswith(
        f"{manifest}:2: expired at ingest: captured 1990-05-05"
    )
