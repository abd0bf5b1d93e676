"""A bounded fuzz run: a few hundred seeded malformed images through ingest (the engine in
this process, the command line with worker processes) and POST /v1/search.

Truncated and bit-flipped real JPEG and PNG bytes, strips and other extreme sizes, bogus
headers declaring huge sizes, decompression bombs, empty and non-image files, and GIF,
WebP, TIFF, BMP oddities (odd modes, frames, EXIF). Nothing may raise, answer 5xx or
leave a file in the home's uploads/; the catalog must stay consistent: the index agrees
with it and every image has exactly the faces it says.
"""

from __future__ import annotations

import io
import json
import random
import sqlite3
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facesearch import FaceSearch, Settings
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.app import create_app
from tests.app_gallery import PURPOSE, bearer

from ..conftest import REGISTER_ARGS, register

SEED = 20261204
FACES = ["lfw/AJ_Cook/AJ_Cook_0001.jpg", "face_recognition/examples/obama-240p.jpg"]
# Reasons that come from the catch-alls, not from a check that knew the problem: each one
# is a failure the fuzz run found (reported by the assertion that lists them).
CATCH_ALL = "cannot analyse image:"


def save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, depth: int = 8, color: int = 2) -> bytes:
    head = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IEND", b"")


def jpeg_declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """A real JPEG with the size in its frame header (SOF0/SOF2) replaced."""
    at = max(jpeg.find(b"\xff\xc0"), jpeg.find(b"\xff\xc2"))
    size = struct.pack(">HH", height, width)
    return jpeg[: at + 5] + size + jpeg[at + 9 :]


def gif_declaring(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b";"


def bmp_declaring(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54) + info + b"\x00" * 16


def flipped(data: bytes, rng: random.Random, flips: int) -> bytes:
    out = bytearray(data)
    for _ in range(flips):
        at = rng.randrange(len(out))
        out[at] ^= 1 << rng.randrange(8)
    return bytes(out)


def fuzz_cases(dev: Path) -> dict[str, bytes]:
    """Name (with a suffix that says what it claims to be) -> bytes; seeded."""
    rng = random.Random(SEED)
    photos = [Image.open(dev / rel).convert("RGB") for rel in FACES]
    small = [p.resize((p.width // 2, p.height // 2)) for p in photos]
    real = {
        "jpg": [(dev / rel).read_bytes() for rel in FACES],
        "png": [save(p, "PNG") for p in small],
        "gif": [save(p, "GIF") for p in small],
        "webp": [save(p, "WEBP") for p in small],
        "tif": [save(p, "TIFF", compression="tiff_lzw") for p in small],
        "bmp": [save(p, "BMP") for p in small],
    }
    cases: dict[str, bytes] = {}

    def add(name: str, data: bytes) -> None:
        cases[f"{len(cases):03d}-{name}"] = data

    for ext, blobs in real.items():  # cut anywhere: headers, tables, mid-scan
        for _ in range(14 if ext in ("jpg", "png") else 6):
            data = rng.choice(blobs)
            add(f"truncated.{ext}", data[: rng.randrange(1, len(data))])
    for ext, blobs in real.items():  # flipped bits, few or many
        for _ in range(24 if ext in ("jpg", "png") else 10):
            data = rng.choice(blobs)
            add(f"flipped.{ext}", flipped(data, rng, rng.choice([1, 2, 8, 64, 512])))
    for ext, blobs in real.items():  # a run of the file overwritten with random bytes
        for _ in range(4):
            data = bytearray(rng.choice(blobs))
            at = rng.randrange(len(data))
            data[at : at + 64] = rng.randbytes(64)
            add(f"overwritten.{ext}", bytes(data))
    for width, height in [(1, 20000), (20000, 1), (1, 1), (2, 3), (15, 15), (15, 600),
                          (16, 16), (17, 900), (16, 801), (3, 40000), (40000, 3),
                          (8000, 100), (100, 8000), (4000, 80), (2000, 2000)]:  # fmt: skip
        for fmt, ext in (("PNG", "png"), ("JPEG", "jpg"), ("GIF", "gif")):
            if fmt == "GIF" and max(width, height) > 65535:
                continue
            image = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in "rgb"))
            add(f"size-{width}x{height}.{ext}", save(image, fmt))
    jpeg = real["jpg"][0]
    for width, height in [(65535, 65535), (65535, 1), (1, 65535), (9000, 9000), (0, 0)]:
        add(f"declares-{width}x{height}.jpg", jpeg_declaring(jpeg, width, height))
    for width, height in [(100_000, 100_000), (2**31 - 1, 1), (1, 2**31 - 1), (9000, 9000),
                          (0, 10), (10, 0), (20000, 20000)]:  # fmt: skip
        add(f"declares-{width}x{height}.png", png_declaring(width, height))
        add(f"declares-16bit-{width}x{height}.png", png_declaring(width, height, 16, 6))
    for width, height in [(65535, 65535), (0, 0), (1, 65535)]:
        add(f"declares-{width}x{height}.gif", gif_declaring(width, height))
    for width, height in [(100_000, 100_000), (-50, -50), (0, 0), (2**31 - 1, 2), (50, -(2**31))]:
        add(f"declares-{width}x{height}.bmp", bmp_declaring(width, height))
    # Decompression bombs: a few kB that unpack to tens of millions of pixels.
    add("bomb-1bit.png", save(Image.new("1", (9000, 9000)), "PNG", optimize=True))
    add("bomb-gray.png", save(Image.new("L", (8000, 8000)), "PNG", optimize=True))
    add("bomb.gif", save(Image.new("P", (8000, 8000)), "GIF"))
    add("bomb.webp", save(Image.new("RGB", (16000, 4000)), "WEBP", lossless=True))
    add("bomb.tif", save(Image.new("1", (9000, 9000)), "TIFF", compression="group4"))
    # Not images, or empty.
    for name, data in [
        ("empty.jpg", b""),
        ("zero-bytes.png", b""),
        ("text.jpg", b"hello, this is not a photo\n" * 20),
        ("pdf.png", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
        ("zip.jpg", b"PK\x03\x04" + bytes(200)),
        ("html.png", b"<!doctype html><title>x</title>"),
        ("magic-only.jpg", b"\xff\xd8\xff"),
        ("magic-only.png", b"\x89PNG\r\n\x1a\n"),
        ("magic-only.gif", b"GIF89a"),
        ("magic-only.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 "),
        ("magic-only.tif", b"II*\x00\x08\x00\x00\x00"),
    ]:
        add(name, data)
    for _ in range(8):
        add("random.jpg", rng.randbytes(rng.choice([1, 10, 100, 5000])))
    # Modes, frames and metadata that decoders handle unevenly.
    face = small[0]
    odd: list[tuple[str, Callable[[], bytes]]] = [
        ("cmyk.jpg", lambda: save(face.convert("CMYK"), "JPEG")),
        ("gray16.png", lambda: save(face.convert("I;16"), "PNG")),
        ("int32.tif", lambda: save(face.convert("I"), "TIFF")),
        ("float.tif", lambda: save(face.convert("F"), "TIFF")),
        ("la.png", lambda: save(face.convert("LA"), "PNG")),
        ("palette-alpha.png", lambda: save(face.convert("P"), "PNG", transparency=0)),
        ("one-bit.bmp", lambda: save(face.convert("1"), "BMP")),
        ("multipage.tif", lambda: save(face, "TIFF", save_all=True, append_images=[face] * 2)),
        ("jpeg-in.tif", lambda: save(face, "TIFF", compression="jpeg")),
        ("animated.gif", lambda: save(face, "GIF", save_all=True, append_images=[face] * 3)),
        ("animated.webp", lambda: save(face, "WEBP", save_all=True, append_images=[face])),
        ("webp-alpha.webp", lambda: save(face.convert("RGBA"), "WEBP")),
        ("progressive.jpg", lambda: save(face, "JPEG", progressive=True)),
    ]
    for orientation in (0, 1, 3, 6, 8, 9, 255, 65535):
        exif = Image.Exif()
        exif[0x0112] = orientation
        odd.append((f"orientation-{orientation}.jpg", lambda e=exif: save(face, "JPEG", exif=e)))
    for name, make in odd:
        data = make()
        add(name, data)
        add(f"flipped-{name}", flipped(data, rng, 4))
        add(f"truncated-{name}", data[: len(data) * 2 // 3])
    return cases


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, dev: Path) -> Path:
    folder = tmp_path_factory.mktemp("fuzz") / "files"
    folder.mkdir()
    for name, data in fuzz_cases(dev).items():
        (folder / name).write_bytes(data)
    return folder


def check_home(home: Path) -> None:
    """No upload left behind; the index agrees with the catalog; every image has its faces."""
    uploads = home / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir()), sorted(uploads.iterdir())
    check_home_catalog(home)


def check_home_catalog(home: Path) -> None:
    """The index agrees with the catalog; every image has its faces and a provenance."""
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        assert fs.repaired == {}
        assert fs.stats()["index"]["consistent"]
    db = sqlite3.connect(home / "catalog.sqlite")
    try:
        broken = db.execute(
            """SELECT i.id FROM images i WHERE i.face_count !=
               (SELECT COUNT(*) FROM faces f WHERE f.image_id = i.id)
               OR NOT EXISTS (SELECT 1 FROM provenance p WHERE p.image_id = i.id)"""
        ).fetchall()
    finally:
        db.close()
    assert broken == []


@pytest.fixture(scope="module")
def engine_run(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("fuzz-engine") / "home"
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        register(fs, "fuzz")
        report = fs.ingest([corpus], source="fuzz")
    files = len(list(corpus.iterdir()))
    assert report.files == files
    assert report.images_added + report.copies_added + len(report.failed) == files
    found = [f for f in report.failed if f["reason"].startswith(CATCH_ALL)]
    assert found == [], f"{len(found)} of {files} fuzz files failed unexpectedly"
    assert not [f for f in report.failed if "DOS attack" in f["reason"]]  # Pillow's words
    print(f"\nfuzz: {files} files, {report.images_added} ingested, {len(report.failed)} refused")
    yield home


def test_fuzz_engine_ingest_keeps_the_home_consistent(engine_run: Path) -> None:
    check_home(engine_run)


def test_fuzz_cli_ingest_in_worker_processes(corpus: Path, tmp_path: Path) -> None:
    """Every third file (each kind is there) through the command line's worker processes."""
    home = tmp_path / "home"
    folder = tmp_path / "files"
    folder.mkdir()
    for path in sorted(corpus.iterdir())[::3]:
        (folder / path.name).write_bytes(path.read_bytes())
    run = [sys.executable, "-m", "facesearch.cli"]
    added = subprocess.run(
        [*run, "sources", "add", "fuzz", *REGISTER_ARGS, "--home", str(home)],
        capture_output=True,
        text=True,
    )
    assert added.returncode == 0, added.stderr
    args = ["ingest", str(folder), "--source", "fuzz", "--workers", "2", "--json"]
    done = subprocess.run(
        [*run, *args, "--no-progress", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    files = len(list(folder.iterdir()))
    assert report["images_added"] + report["copies_added"] + report["failures"] == files
    assert not [f for f in report["failed"] if f["reason"].startswith(CATCH_ALL)]
    check_home(home)


def test_fuzz_search_answers_4xx_or_200_never_5xx(corpus: Path, engine_run: Path) -> None:
    store = SqliteAccountStore(engine_run / "accounts.sqlite")
    key = store.create_key("fuzz", "search")[1]
    store.close()
    settings = Settings(
        home=engine_run,
        workers=1,
        api={"search_rate_per_minute": 60_000, "search_burst": 10_000},
        governance={"retention_interval_minutes": 0},
    )
    statuses: dict[int, int] = {}
    server_errors = []
    with (
        FaceSearch(settings) as engine,
        TestClient(create_app(engine), base_url="https://testserver") as client,
    ):
        for path in sorted(corpus.iterdir()):
            answer = client.post(
                "/v1/search",
                files={"image": (path.name, path.read_bytes(), "image/jpeg")},
                data=PURPOSE,
                headers=bearer(key),
            )
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            assert answer.headers["content-type"].startswith("application/json")
            if answer.status_code >= 500:
                server_errors.append((path.name, answer.text))
    print(f"\nfuzz /v1/search: {sum(statuses.values())} probes, statuses {statuses}")
    assert server_errors == []
    assert set(statuses) <= {200, 400, 413, 415, 422}
    check_home(engine_run)


def test_fuzz_uploads_keep_only_accepted_files(corpus: Path, tmp_path: Path) -> None:
    """Every second file through POST /v1/images: never 5xx, and uploads/ holds exactly
    the files of the images the catalog accepted (a refused upload leaves nothing)."""
    home = tmp_path / "home"
    settings = Settings(
        home=home,
        workers=1,
        api={"ingest_rate_per_minute": 60_000, "ingest_burst": 10_000},
        governance={"retention_interval_minutes": 0},
    )
    with FaceSearch(settings) as fs:
        register(fs, "fuzz")
    store = SqliteAccountStore(home / "accounts.sqlite")
    key = store.create_key("fuzz", "ingest")[1]
    store.close()
    statuses: dict[int, int] = {}
    server_errors = []
    with (
        FaceSearch(settings) as engine,
        TestClient(create_app(engine), base_url="https://testserver") as client,
    ):
        for path in sorted(corpus.iterdir())[::2]:
            answer = client.post(
                "/v1/images",
                files={"image": (path.name, path.read_bytes(), "image/jpeg")},
                data={"source": "fuzz"},
                headers=bearer(key),
            )
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            if answer.status_code >= 500:
                server_errors.append((path.name, answer.text))
        stored = {image.sha256 for image in engine.list_images(limit=10_000)}
    print(f"\nfuzz /v1/images: {sum(statuses.values())} uploads, statuses {statuses}")
    assert server_errors == []
    assert set(statuses) <= {200, 201, 400, 413, 415, 422}
    assert statuses.get(201, 0) == len(stored) > 0
    kept = {p.name.split("-", 1)[0] for p in (home / "uploads").iterdir()}
    assert kept == stored
    check_home_catalog(home)
