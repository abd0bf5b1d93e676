"""kill -9 during CLI ingests, at seeded random moments: afterwards no image is lost,
stored twice or stored without an audit entry that covers it, and a re-run completes."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from facesearch import FaceSearch, Settings

from ..conftest import REGISTER_ARGS

TRIALS = 4
# Enough photos that an ingest outlasts the random moment (RetinaFace and the ONNX
# embedder analyse a small LFW photo in tens of milliseconds).
PHOTOS = 240


def images_in(catalog: Path) -> int:
    try:
        with sqlite3.connect(catalog, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM images").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def check_home(home: Path) -> tuple[int, set[str]]:
    """Every stored image covered by an audit entry, none stored twice; (images, hashes)."""
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        db = fs.catalog.db
        stored = [str(r[0]) for r in db.execute("SELECT sha256 FROM images")]
        audited = {
            sha
            for entry in fs.audit.entries(action="ingest.batch")
            for sha in entry.details["images"]
        }
        unaudited = set(stored) - audited
        assert not unaudited, f"{len(unaudited)} of {len(stored)} stored images have no audit entry"
        assert len(stored) == len(set(stored))
        copies = "SELECT COUNT(*) - COUNT(DISTINCT source_id || ':' || path) FROM provenance"
        assert db.execute(copies).fetchone()[0] == 0
        assert (
            db.execute(
                "SELECT COUNT(*) FROM faces WHERE image_id NOT IN (SELECT id FROM images)"
            ).fetchone()[0]
            == 0
        )
        assert fs.stats()["index"]["consistent"]
        assert fs.verify_audit().ok
        return len(stored), set(stored)


def test_kill_9_at_random_moments_loses_duplicates_and_leaves_unaudited_nothing(
    tmp_path: Path, dev: Path
) -> None:
    photos = sorted((dev / "lfw").rglob("*.jpg"))[:PHOTOS]
    home = tmp_path / "home"
    cli = [sys.executable, "-m", "facesearch.cli"]
    subprocess.run(
        [*cli, "sources", "add", "lfw", *REGISTER_ARGS, "--home", str(home)],
        check=True,
        capture_output=True,
    )
    ingest = [
        *cli,
        "ingest",
        *map(str, photos),
        "--home",
        str(home),
        "--source",
        "lfw",
        "--workers",
        "1",
        "--no-progress",
    ]
    rng = random.Random(8)
    catalog = home / "catalog.sqlite"
    killed = 0
    for _ in range(TRIALS):
        before = images_in(catalog)
        proc = subprocess.Popen(ingest, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Once this run has stored something, a seeded random moment later: kill -9.
        deadline = time.monotonic() + 60
        while proc.poll() is None and images_in(catalog) == before:
            assert time.monotonic() < deadline, "the ingest stored nothing in a minute"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        stored, _ = check_home(home)
        assert stored >= before
    assert killed >= TRIALS - 1, "the ingests finished before they could be killed"

    resumed = subprocess.run([*ingest, "--json"], capture_output=True, text=True, check=True)
    report = json.loads(resumed.stdout)
    assert report["failures"] == 0
    stored, hashes = check_home(home)
    assert stored == len({p.read_bytes() for p in photos}) == len(hashes)
    assert report["images_added"] + report["unchanged"] + report["copies_added"] == len(photos)

    # A new copy of a stored image (another source) is audited before it is written too.
    subprocess.run(
        [*cli, "sources", "add", "press", *REGISTER_ARGS, "--home", str(home)],
        check=True,
        capture_output=True,
    )
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(photos[0].read_bytes())
    subprocess.run(
        [*cli, "ingest", str(copy), "--home", str(home), "--source", "press", "--no-progress"],
        check=True,
        capture_output=True,
    )
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        last = list(fs.audit.entries(action="ingest.batch"))[-1]
        assert (last.details["source"], last.details["images"]) == ("press", [])
        assert last.details["copies"] == [hashlib.sha256(copy.read_bytes()).hexdigest()]
