"""Bad files, re-runs, duplicates, manifests and a killed ingest: nothing lost or doubled."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from facesearch import FaceSearch, Settings

from ..conftest import REGISTER_ARGS, register

GOOD = [
    "lfw/AJ_Cook/AJ_Cook_0001.jpg",
    "face_recognition/examples/obama.jpg",
    "face_recognition/examples/biden.jpg",
    "deepface/img1.jpg",
]


def make_bad_files(folder: Path, dev: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = (dev / GOOD[1]).read_bytes()
    bad = {
        "corrupt": folder / "corrupt.jpg",
        "truncated": folder / "truncated.jpg",
        "empty": folder / "empty.png",
        "bomb": folder / "bomb.png",
    }
    bad["corrupt"].write_bytes(os.urandom(4096))
    bad["truncated"].write_bytes(good[: len(good) // 3])
    bad["empty"].write_bytes(b"")
    # 30000 x 30000 one-bit pixels compress to a few kilobytes: a decompression bomb.
    buf = io.BytesIO()
    Image.new("1", (30_000, 30_000)).save(buf, format="PNG", optimize=True)
    bad["bomb"].write_bytes(buf.getvalue())
    return bad


def test_bad_files_are_reported_and_good_ones_all_indexed(tmp_path: Path, dev: Path) -> None:
    folder = tmp_path / "mixed"
    bad = make_bad_files(folder, dev)
    for rel in GOOD:
        (folder / Path(rel).name).write_bytes((dev / rel).read_bytes())
    assert bad["bomb"].stat().st_size < 200_000
    with FaceSearch(Settings(home=tmp_path / "home", workers=1)) as fs:
        register(fs, "mixed")
        report = fs.ingest([folder], source="mixed")
        assert report.images_added == len(GOOD)
        assert report.faces_indexed == len(GOOD)
        reasons = {Path(f["path"]).stem: f["reason"] for f in report.failed}
        assert set(reasons) == set(bad)
        assert "0 bytes" in reasons["empty"]
        assert "pixels" in reasons["bomb"]
        assert "decode" in reasons["truncated"] or "truncated" in reasons["truncated"]
        assert "not a recognised image" in reasons["corrupt"]
        assert fs.stats()["failures"] == len(bad)
        # The bad files did not hurt what is stored: searches still find the good faces.
        [result] = fs.search(dev / "face_recognition/examples/obama2.jpg")
        assert Path(result.matches[0].image.path).name == "obama.jpg"


def test_a_rerun_adds_nothing_and_a_copy_adds_only_provenance(tmp_path: Path, dev: Path) -> None:
    with FaceSearch(Settings(home=tmp_path / "home", workers=1)) as fs:
        register(fs, "a", "b")
        first = fs.ingest([dev / p for p in GOOD], source="a")
        before = fs.stats()
        again = fs.ingest([dev / p for p in GOOD], source="a")
        assert (again.images_added, again.copies_added, again.unchanged) == (0, 0, len(GOOD))
        assert fs.stats() == before
        # The same bytes under another name and another source: one image, two provenances.
        copy = tmp_path / "copy-of-obama.jpg"
        copy.write_bytes((dev / GOOD[1]).read_bytes())
        other = fs.ingest([copy], source="b")
        assert (other.images_added, other.copies_added) == (0, 1)
        after = fs.stats()
        assert (after["images"], after["faces"]) == (before["images"], before["faces"])
        assert after["provenance"] == before["provenance"] + 1
        [result] = fs.search(dev / "face_recognition/examples/obama2.jpg", top_k=10)
        top = result.matches[0]
        assert {p.source for p in top.image.provenance} == {"a", "b"}
        assert len({m.image.id for m in result.matches}) == len(result.matches)
        assert first.images_added == len(GOOD)


def test_manifests_carry_provenance(tmp_path: Path, dev: Path) -> None:
    csv_manifest = tmp_path / "m.csv"
    csv_manifest.write_text(
        "path,source_url,page_url,captured_at\n"
        f"{dev / GOOD[1]},https://example.org/obama.jpg,https://example.org/story,2020-01-02\n"
    )
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(
        json.dumps({"path": str(dev / GOOD[2]), "page_url": "https://example.org/biden"}) + "\n"
    )
    with FaceSearch(Settings(home=tmp_path / "home", workers=1)) as fs:
        register(fs, "press")
        report = fs.ingest([csv_manifest, jsonl], source="press")
        assert report.images_added == 2
        [result] = fs.search(dev / "face_recognition/examples/obama2.jpg", top_k=1)
        prov = result.matches[0].image.provenance[0]
        assert (prov.source, prov.source_url, prov.page_url, prov.captured_at) == (
            "press",
            "https://example.org/obama.jpg",
            "https://example.org/story",
            "2020-01-02",
        )


def test_a_killed_ingest_resumes_without_duplicates_or_orphans(tmp_path: Path, dev: Path) -> None:
    photos = sorted((dev / "lfw").rglob("*.jpg"))[:80]
    home = tmp_path / "home"
    cmd = [
        sys.executable,
        "-m",
        "facesearch.cli",
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
    subprocess.run(
        [
            sys.executable,
            "-m",
            "facesearch.cli",
            "sources",
            "add",
            "lfw",
            *REGISTER_ARGS,
            "--home",
            str(home),
        ],
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    catalog = home / "catalog.sqlite"
    deadline = time.monotonic() + 120
    import sqlite3

    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if catalog.exists():
            try:
                with sqlite3.connect(catalog) as db:
                    done = db.execute("SELECT COUNT(*) FROM images").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if done >= 15:
                break
    assert proc.poll() is None, "the ingest finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 15 <= done < len(photos)

    resumed = subprocess.run([*cmd, "--json"], capture_output=True, text=True, check=True)
    report = json.loads(resumed.stdout)
    assert report["failures"] == 0
    assert report["images_added"] + report["unchanged"] + report["copies_added"] == len(photos)
    assert report["unchanged"] >= done  # what was committed before the kill is not redone
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        stats = fs.stats()
        assert stats["images"] == len({p.read_bytes() for p in photos})
        assert stats["index"]["consistent"]
        db = fs.catalog.db
        assert (
            db.execute(
                "SELECT COUNT(*) FROM faces WHERE image_id NOT IN (SELECT id FROM images)"
            ).fetchone()[0]
            == 0
        )
        assert (
            db.execute(
                "SELECT COUNT(*) FROM images WHERE id NOT IN (SELECT image_id FROM provenance)"
            ).fetchone()[0]
            == 0
        )
        assert (
            db.execute("SELECT COUNT(*) - COUNT(DISTINCT path) FROM provenance").fetchone()[0] == 0
        )
        assert len(fs.index.ids()) == len(set(fs.index.ids().tolist())) == stats["faces"]


def test_the_index_is_repaired_from_the_catalog(tmp_path: Path, dev: Path) -> None:
    home = tmp_path / "home"
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        register(fs, "a")
        fs.ingest([dev / p for p in GOOD], source="a")
        faces = fs.stats()["faces"]
    # Lose the index entirely, as after a crash that took its files.
    for f in (home / "index").rglob("*"):
        if f.is_file():
            f.unlink()
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        # Rebuilt from the catalog on open: every face is searchable again.
        state = fs.stats()["index"]
        assert (state["faces"], state["consistent"]) == (faces, True)
        [result] = fs.search(dev / "face_recognition/examples/obama2.jpg", top_k=1)
        assert Path(result.matches[0].image.path).name == "obama.jpg"


@pytest.mark.slow
def test_two_workers_give_the_same_catalog_as_one(tmp_path: Path, dev: Path) -> None:
    photos = [dev / p for p in GOOD] + sorted((dev / "compreface").glob("01*.jpg"))
    counts = []
    for workers in (1, 2):
        with FaceSearch(Settings(home=tmp_path / f"h{workers}", workers=workers)) as fs:
            register(fs, "s")
            report = fs.ingest(photos, source="s")
            counts.append((report.images_added, report.faces_indexed, fs.stats()["faces"]))
    assert counts[0] == counts[1]


def test_an_index_behind_the_catalog_catches_up_on_open(tmp_path: Path, dev: Path) -> None:
    home = tmp_path / "home"
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        register(fs, "a")
        fs.ingest([dev / p for p in GOOD], source="a")
        # As if the process died after the catalog commit, before the index write.
        fs.index.remove(fs.index.ids()[:2].tolist())
        assert not fs.stats()["index"]["consistent"]
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        assert fs.repaired == {"added": 2, "removed": 0}
        assert fs.stats()["index"]["consistent"]
