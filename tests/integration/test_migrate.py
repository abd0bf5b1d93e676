"""``facesearch migrate``: an embedded home (real photos ingested with dlib, an erasure, a
suppression, an API key) moved into a real PostgreSQL and a real Milvus answers the same
searches, keeps its audit chain (same entries, same last hash, verifies), its suppression
list and its accounts; running it again finishes or checks the same copy; a database
holding other data is refused in one line. The home is read, never changed."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import psycopg
import pytest

from facesearch import FaceSearch, Settings
from facesearch.cli.main import main

from ..conftest import REGISTER_ARGS, register
from ..engines import milvus

PEOPLE = ("Adel_Al-Jubeir", "Alberto_Fujimori", "Arantxa_Sanchez-Vicario")


def pairs(dev: Path, manifest: list[dict[str, str]]) -> list[tuple[Path, Path]]:
    """Two photos of each of a few people (LFW): one to ingest, one to search with."""
    out = []
    for person in PEOPLE:
        rows = [r["path"] for r in manifest if r["path"].startswith(f"lfw/{person}/")][:2]
        out.append((dev / rows[0], dev / rows[1]))
    return out


def best(fs: FaceSearch, probe: Path) -> str:
    [result] = fs.search(probe)
    return result.matches[0].image.path if result.matches else ""


@pytest.mark.postgres
@pytest.mark.milvus
@pytest.mark.slow
def test_a_home_moved_to_postgres_and_milvus_answers_and_audits_as_before(
    postgres_url: str,
    dev: Path,
    manifest: list[dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    photos = pairs(dev, manifest)
    extra = dev / next(r["path"] for r in manifest if r["path"].startswith("lfw/Barbra"))
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        register(fs, "lfw")
        fs.ingest([*(p for p, _ in photos), extra], source="lfw")
        erased = fs.catalog.image_id_by_sha(hashlib.sha256(extra.read_bytes()).hexdigest())
        assert erased is not None
        fs.erase(image_ids=[erased], reason="a subject's request")
        fs.suppress(extra, consent_ref="C-1")
        before = {probe.name: best(fs, probe) for _, probe in photos}
    assert main(["keys", "create", "--name", "ops", "--role", "admin", "--home", str(home)]) == 0
    capsys.readouterr()
    with FaceSearch(Settings(home=home, workers=1)) as fs:
        faces, head = fs.catalog.face_state(), fs.audit.head()
        entries = len(list(fs.audit.entries()))
    files = {p.name: p.read_bytes() for p in home.glob("*.sqlite")}
    index = milvus.server().collection(f"migrate_{time.time_ns()}")

    args = ["migrate", "--home", str(home), "--to-catalog", postgres_url, "--to-index", index]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and not result["resumed"]
    assert (result["faces"], result["face_id_sum"]) == faces
    assert result["copied"]["images"] == 3 and result["copied"]["suppressions"] == 1

    # Run again (as after a stop while the index was built): the same copy is found, not
    # copied twice; the index is rebuilt and checked.
    assert main([*args, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["ok"] and again["resumed"] and again["copied"] == {}

    moved = Settings(
        home=tmp_path / "cache",
        workers=1,
        catalog={"url": postgres_url},  # type: ignore[arg-type]
        index={"url": index},  # type: ignore[arg-type]
    )
    with FaceSearch(moved) as fs:
        assert fs.audit.head() == head and len(list(fs.audit.entries())) == entries
        assert {probe.name: best(fs, probe) for _, probe in photos} == before
        assert all(path for path in before.values())
        assert fs.verify_audit().ok
        assert fs.suppressions.count() == 1
        # New rows are numbered after the copied ones, and the chain goes on.
        register(fs, "press")
        assert fs.verify_audit().ok
    with psycopg.connect(postgres_url) as db:
        [(keys,)] = db.execute("SELECT count(*) FROM api_keys").fetchall()
        [(image_ids,)] = db.execute("SELECT array_agg(id ORDER BY id) FROM images").fetchall()
    assert keys == 1 and erased not in image_ids
    # The home is as it was.
    assert {p.name: p.read_bytes() for p in home.glob("*.sqlite")} == files

    # The target has moved on (a new source): not this home's copy any more.
    capsys.readouterr()
    assert main(args) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not this home's copy" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("catalog", "index", "words"),
    [
        ("sqlite:///tmp/other.sqlite", "local:///tmp/i", "into postgresql:// catalogs"),
        ("mysql://db/x", "local:///tmp/i", "unknown scheme mysql://"),
        ("postgresql://u@127.0.0.1:1/x", "faiss://x", "--to-index: unknown scheme faiss://"),
    ],
)
def test_migrate_refuses_a_target_it_cannot_copy_into_in_one_line(
    catalog: str, index: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    assert main(["sources", "add", "news", *REGISTER_ARGS, "--home", str(home)]) == 0
    files = {p.name: p.read_bytes() for p in home.glob("*.sqlite")}
    capsys.readouterr()
    args = ["migrate", "--home", str(home), "--to-catalog", catalog, "--to-index", index]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err, err
    assert {p.name: p.read_bytes() for p in home.glob("*.sqlite")} == files


def test_migrate_refuses_a_home_that_is_not_embedded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["migrate", "--home", str(tmp_path), "--catalog", "postgresql://u@127.0.0.1:1/x"]
    to = ["--to-catalog", "postgresql://u@127.0.0.1:1/y", "--to-index", "local:///tmp/i"]
    assert main([*args, *to]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "copies an embedded home" in err, err


def test_migrate_refuses_milvus_for_an_encrypted_home_before_copying(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACESEARCH_ENCRYPTION_KEY", base64.b64encode(bytes(range(32))).decode())
    home = tmp_path / "home"
    assert main(["sources", "add", "news", *REGISTER_ARGS, "--home", str(home)]) == 0
    capsys.readouterr()
    args = ["migrate", "--home", str(home), "--to-catalog", "postgresql://u@127.0.0.1:1/x"]
    assert main([*args, "--to-index", "milvus://127.0.0.1:1/c"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Milvus cannot hold" in err, err
