"""A server sees what another process writes into its home: a command-line ingest or
erasure beside it shows in its searches and its readiness, without a restart."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facesearch import FaceSearch, Settings
from facesearch.app import create_app
from tests.app_gallery import PURPOSE, bearer, register

from ..conftest import REGISTER_ARGS

EXAMPLES = "face_recognition/examples"


def settings(home: Path, key: str | None = None) -> Settings:
    return Settings(
        home=home,
        workers=1,
        governance={"retention_interval_minutes": 0},
        encryption_key=key,
    )


def cli(*args: str, home: Path, key: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"FACESEARCH_ENCRYPTION_KEY": key} if key else {})}
    return subprocess.run(
        [sys.executable, "-m", "facesearch.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@dataclass
class Server:
    client: TestClient
    auth: dict[str, str]
    home: Path
    key: str | None  # the encryption key, for other processes on the same home


KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(params=[None, KEY], ids=["plain", "encrypted"])
def server(request: pytest.FixtureRequest, tmp_path: Path, dev: Path) -> Iterator[Server]:
    """A server on a home holding one photo (obama.jpg), with an admin key; the home's
    templates in the clear (index files) or encrypted (an index in memory only)."""
    from facesearch.accounts.sqlite import SqliteAccountStore

    home = tmp_path / "home"
    with FaceSearch(settings(home, request.param)) as setup:
        register(setup, "archive")
        setup.ingest([dev / EXAMPLES / "obama.jpg"], source="archive")
    store = SqliteAccountStore(home / "accounts.sqlite")
    key = store.create_key("test admin", "admin")[1]
    store.close()
    with (
        FaceSearch(settings(home, request.param)) as engine,
        TestClient(create_app(engine), base_url="https://testserver") as client,
    ):
        yield Server(client, bearer(key), home, request.param)


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


def test_an_ingest_by_another_engine_is_searched_at_once(server: Server, dev: Path) -> None:
    client, auth, home, key = server.client, server.auth, server.home, server.key
    biden = dev / EXAMPLES / "biden.jpg"
    assert best_file(client, auth, biden) is None
    assert ready(client) == (200, 1)
    with FaceSearch(settings(home, key)) as other:  # another process's view of the same home
        report = other.ingest([biden, dev / "deepface/img1.jpg"], source="archive")
        assert report.images_added == 2
    assert ready(client) == (200, 3)
    assert best_file(client, auth, biden) == "biden.jpg"
    stats = client.get("/v1/stats", headers=auth).json()
    assert (stats["index"]["faces"], stats["index"]["consistent"]) == (3, True)


def test_a_cli_ingest_and_erasure_beside_the_server(server: Server, dev: Path) -> None:
    client, auth, home, key = server.client, server.auth, server.home, server.key
    biden = dev / EXAMPLES / "biden.jpg"
    assert cli("sources", "add", "cli", *REGISTER_ARGS, home=home, key=key).returncode == 0
    done = cli("ingest", str(biden), "--source", "cli", "--workers", "1", home=home, key=key)
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
    erased = cli("erase", "--image", str(biden_id), home=home, key=key)
    assert erased.returncode == 0, erased.stderr + erased.stdout
    assert ready(client) == (200, 2)
    assert best_file(client, auth, biden) is None
    assert (best_file(client, auth, upload) or "").endswith("-rose.jpg")  # kept in uploads/
    with FaceSearch(settings(home, key)) as after:
        stats = after.stats()
        assert (stats["faces"], stats["index"]["consistent"]) == (2, True)
        if key is None:  # the files were left in order: nothing to repair
            assert after.repaired == {}


# Plain homes only: an encrypted home keeps no index files, so there is nothing to wait for.
@pytest.mark.parametrize("server", [None], ids=["plain"], indirect=True)
def test_while_another_process_writes_the_server_serves_what_it_has(
    server: Server, dev: Path
) -> None:
    client, auth, home, key = server.client, server.auth, server.home, server.key
    other = FaceSearch(settings(home, key))
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
