"""The engine, the CLI and the API on a PostgreSQL catalog: real photos, a real server
(tests/engines/postgres.py), stopped half-way to see what a user sees when it goes away."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from scripts.engines import postgres as engine

from facesearch import FaceSearch, Settings
from facesearch.app import create_app
from facesearch.cli.main import main
from facesearch.errors import BackendUnavailable

from ..conftest import REGISTER_ARGS, register
from ..engines import postgres as pg

pytestmark = pytest.mark.postgres
EXAMPLES = Path("face_recognition") / "examples"


def settings(home: Path, url: str) -> Settings:
    return Settings(home=home, workers=1, catalog={"url": url})  # type: ignore[arg-type]


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as db:
        return db.execute(sql).fetchall()


def test_an_engine_on_postgres_ingests_searches_and_erases(
    postgres_url: str, dev: Path, tmp_path: Path
) -> None:
    photos = [dev / EXAMPLES / "obama.jpg", dev / EXAMPLES / "biden.jpg"]
    with FaceSearch(settings(tmp_path / "home", postgres_url)) as fs:
        register(fs, "news")
        report = fs.ingest(photos, source="news")
        assert (report.images_added, report.faces_indexed) == (2, 2)
        again = fs.ingest(photos, source="news")
        assert (again.images_added, again.unchanged) == (0, 2)
        [result] = fs.search(dev / EXAMPLES / "obama2.jpg")
        best = result.matches[0]
        assert best.is_match and best.image.path.endswith("obama.jpg")
        receipt = fs.erase(image_ids=[best.image.id], reason="a subject's request")
        assert (receipt.images_removed, receipt.faces_removed) == (1, 1)
        [after] = fs.search(dev / EXAMPLES / "obama2.jpg")
        assert all(not m.image.path.endswith("obama.jpg") for m in after.matches)
        assert fs.verify_audit().ok
    # The rows are in PostgreSQL, not in a SQLite file of the home.
    assert rows(postgres_url, "SELECT count(*) FROM faces") == [(1,)]
    assert not (tmp_path / "home" / "catalog.sqlite").exists()


def test_two_processes_ingesting_the_same_files_store_each_image_once(
    postgres_url: str, dev: Path, tmp_path: Path
) -> None:
    names = ["obama.jpg", "biden.jpg", "obama2.jpg", "two_people.jpg"]
    photos = [str(dev / EXAMPLES / n) for n in names]
    home = str(tmp_path / "home")
    common = ["--home", home, "--catalog", postgres_url]
    assert main(["sources", "add", "news", *REGISTER_ARGS, *common]) == 0
    ingest = [sys.executable, "-m", "facesearch.cli", "ingest", *photos, "--source", "news"]
    runs = [
        subprocess.Popen([*ingest, *common, "--workers", "1", "--no-progress"], text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]  # fmt: skip
    outcomes = [(p.communicate(timeout=180)[1], p.returncode) for p in runs]
    assert [code for _, code in outcomes] == [0, 0], outcomes
    assert rows(postgres_url, "SELECT count(*), count(DISTINCT sha256) FROM images") == [(4, 4)]
    assert rows(postgres_url, "SELECT count(*) FROM provenance") == [(4,)]
    faces = rows(postgres_url, "SELECT count(*), count(DISTINCT (image_id, idx)) FROM faces")
    declared = rows(postgres_url, "SELECT sum(face_count) FROM images")
    assert faces[0][0] == faces[0][1] == declared[0][0] and faces[0][0] >= 4


def test_a_catalog_server_that_goes_away_is_a_clear_error_and_answers_again_when_back(
    dev: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = pg.cluster(tmp_path / "pg")
    url, home = server.url(), tmp_path / "home"
    probe = dev / EXAMPLES / "obama2.jpg"
    with FaceSearch(settings(home, url)) as fs:
        register(fs, "news")
        fs.ingest([dev / EXAMPLES / "obama.jpg", dev / EXAMPLES / "biden.jpg"], source="news")
        with TestClient(create_app(fs), base_url="https://testserver") as client:
            assert client.get("/readyz").status_code == 200
            engine.stop(server.folder)
            down = client.get("/readyz")
            assert down.status_code == 503, down.text
            assert int(down.headers["Retry-After"]) > 0
            assert down.json()["error"]["code"] == "backend_unavailable"
            with pytest.raises(BackendUnavailable, match="PostgreSQL"):
                fs.search(probe)
            with pytest.raises(BackendUnavailable):
                fs.ingest([dev / EXAMPLES / "two_people.jpg"], source="news")
            capsys.readouterr()
            assert main(["stats", "--home", str(home), "--catalog", url]) == 1
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and err.startswith("facesearch: error:"), err
            assert "PostgreSQL" in err and "Traceback" not in err

            engine.start(server.folder)  # the same port: the URL is valid again
            assert client.get("/readyz").status_code == 200
            [result] = fs.search(probe)
            assert result.matches[0].image.path.endswith("obama.jpg")
            report = fs.ingest([dev / EXAMPLES / "two_people.jpg"], source="news")
            assert report.images_added == 1
        stats = fs.stats()
    assert stats["images"] == 3 and stats["index"]["consistent"]
    assert rows(url, "SELECT count(*) FROM provenance") == [(3,)]


def test_a_server_stopped_during_an_ingest_leaves_nothing_lost_duplicated_or_unaudited(
    dev: Path, manifest: list[dict[str, str]], tmp_path: Path
) -> None:
    server = pg.cluster(tmp_path / "pg")
    url, home = server.url(), tmp_path / "home"
    # Enough photos that the ingest is still at work when the first batch is in (a batch
    # is written every 2 s: with 16, a fast detector had finished before the stop).
    photos = [str(dev / r["path"]) for r in manifest if r["path"].startswith("lfw/")][:48]
    common = ["--home", str(home), "--catalog", url]
    assert main(["sources", "add", "news", *REGISTER_ARGS, *common]) == 0
    ingest = [sys.executable, "-m", "facesearch.cli", "ingest", *photos, "--source", "news"]
    ingest += [*common, "--workers", "1", "--no-progress"]
    first = subprocess.Popen(ingest, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stored = 0
        while first.poll() is None and stored < 3:  # stopped once some images are in
            time.sleep(0.05)
            stored = int(str(rows(url, "SELECT count(*) FROM images")[0][0]))
        engine.stop(server.folder)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    engine.start(server.folder)
    again = subprocess.run(ingest, text=True, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr
    images = rows(url, "SELECT sha256 FROM images")
    assert len(images) == len({r[0] for r in images}) == len(photos)
    assert rows(url, "SELECT count(*) FROM provenance") == [(len(photos),)]
    faces = rows(url, "SELECT count(*), count(DISTINCT (image_id, idx)) FROM faces")
    assert faces[0][0] == faces[0][1] == rows(url, "SELECT sum(face_count) FROM images")[0][0]
    with FaceSearch(settings(home, url)) as fs:
        audited = {sha for e in fs.read_audit(action="ingest.batch") for sha in e.details["images"]}
        assert {r[0] for r in images} <= audited
        assert fs.verify_audit().ok
        assert fs.stats()["index"]["consistent"]
