"""A server sees what another process writes into its home: a command-line ingest or
erasure beside it shows in its searches and its readiness, without a restart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facesearch import FaceSearch, Settings
from facesearch.api import create_app
from tests.app_gallery import PURPOSE, bearer, register

from ..conftest import REGISTER_ARGS

EXAMPLES = "face_recognition/examples"


def settings(home: Path) -> Settings:
    return Settings(home=home, workers=1, governance={"retention_interval_minutes": 0})


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facesearch.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def server(tmp_path: Path, dev: Path) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    """A server on a home holding one photo (obama.jpg), with an admin key."""
    from facesearch.accounts.store import SqliteAccountStore

    home = tmp_path / "home"
    with FaceSearch(settings(home)) as setup:
        register(setup, "archive")
        setup.ingest([dev / EXAMPLES / "obama.jpg"], source="archive")
    store = SqliteAccountStore(home / "accounts.sqlite")
    key = store.create_key("test admin", "admin")[1]
    store.close()
    with (
        FaceSearch(settings(home)) as engine,
        TestClient(create_app(engine), base_url="https://testserver") as client,
    ):
        yield client, bearer(key), home


def best_file(client: TestClient, auth: dict[str, str], probe: Path) -> str | None:
    answer = client.post(
        "/v1/search",
        files={"image": (probe.name, probe.read_bytes(), "image/jpeg")},
        data=PURPOSE,
        headers=auth,
    )
    assert answer.status_code == 200, answer.text
    likely = [m for m in answer.json()["matches"] if m["is_match"]]
    return Path(likely[0]["path"]).name if likely else None


def ready(client: TestClient) -> tuple[int, int]:
    answer = client.get("/readyz")
    return answer.status_code, answer.json().get("faces", -1)


def test_an_ingest_by_another_engine_is_searched_at_once(
    server: tuple[TestClient, dict[str, str], Path], dev: Path
) -> None:
    client, auth, home = server
    biden = dev / EXAMPLES / "biden.jpg"
    assert best_file(client, auth, biden) is None
    assert ready(client) == (200, 1)
    with FaceSearch(settings(home)) as other:  # another process's view of the same home
        report = other.ingest([biden, dev / "deepface/img1.jpg"], source="archive")
        assert report.images_added == 2
    assert ready(client) == (200, 3)
    assert best_file(client, auth, biden) == "biden.jpg"
    stats = client.get("/v1/stats", headers=auth).json()
    assert stats["index"] == {"kind": "exact", "faces": 3, "consistent": True}


def test_a_cli_ingest_and_erasure_beside_the_server(
    server: tuple[TestClient, dict[str, str], Path], dev: Path
) -> None:
    client, auth, home = server
    biden = dev / EXAMPLES / "biden.jpg"
    assert cli("sources", "add", "cli", *REGISTER_ARGS, home=home).returncode == 0
    done = cli("ingest", str(biden), "--source", "cli", "--workers", "1", home=home)
    assert done.returncode == 0, done.stderr
    assert ready(client) == (200, 2)
    assert best_file(client, auth, biden) == "biden.jpg"
    # The server writes next (an upload), then the command line erases: each sees the other.
    upload = dev / EXAMPLES / "knn_examples/train/rose_leslie/img1.jpg"
    added = client.post(
        "/v1/images",
        files={"image": ("rose.jpg", upload.read_bytes(), "image/jpeg")},
        data={"source": "archive"},
        headers=auth,
    )
    assert added.status_code == 201, added.text
    image_id = client.get("/v1/images", params={"source": "cli"}, headers=auth).json()
    [biden_id] = [i["id"] for i in image_id["items"]]
    erased = cli("erase", "--image", str(biden_id), home=home)
    assert erased.returncode == 0, erased.stderr + erased.stdout
    assert ready(client) == (200, 2)
    assert best_file(client, auth, biden) is None
    assert (best_file(client, auth, upload) or "").endswith("-rose.jpg")  # kept in uploads/
    with FaceSearch(settings(home)) as after:
        stats = after.stats()
        assert (stats["faces"], stats["index"]["consistent"]) == (2, True)
        assert after.repaired == {}  # the files were left in order: nothing to repair


def test_while_another_process_writes_the_server_serves_what_it_has(
    server: tuple[TestClient, dict[str, str], Path], dev: Path
) -> None:
    client, auth, home = server
    other = FaceSearch(settings(home))
    try:
        with other._writing():  # another process, mid-way through a long ingest
            other.catalog.set_meta("touched", "yes")  # the catalog changed meanwhile
            assert ready(client) == (200, 1)
            obama = dev / EXAMPLES / "obama2.jpg"
            assert best_file(client, auth, obama) == "obama.jpg"
            upload = dev / EXAMPLES / "biden.jpg"
            client.app.state.gateway.engine.lock_wait = 0.2  # type: ignore[attr-defined]
            refused = client.post(
                "/v1/images",
                files={"image": ("b.jpg", upload.read_bytes(), "image/jpeg")},
                data={"source": "archive"},
                headers=auth,
            )
            assert refused.status_code == 503, refused.text
            assert "another process is writing" in refused.json()["error"]["message"]
    finally:
        other.close()
    assert ready(client) == (200, 1)
