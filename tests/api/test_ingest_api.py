"""POST /v1/images: an upload is stored with its provenance and found by a later search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facesearch import FaceSearch, Settings
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.app import create_app
from tests.app_gallery import OBAMA_PROBE, PURPOSE, bearer, register

OBAMA = "face_recognition/examples/obama.jpg"


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    home = tmp_path_factory.mktemp("ingest") / "home"
    store = SqliteAccountStore(home / "accounts.sqlite")
    keys = {role: store.create_key(role, role)[1] for role in ("ingest", "search")}
    with (
        FaceSearch(Settings(home=home, workers=1)) as engine,
        TestClient(create_app(engine, accounts=store), base_url="https://testserver") as client,
    ):
        register(engine, "case-7")
        yield client, keys


def upload(client: TestClient, key: str, photo: Path, **fields: str) -> tuple[int, dict]:
    with open(photo, "rb") as fh:
        response = client.post(
            "/v1/images",
            files={"image": (photo.name, fh, "image/jpeg")},
            data={"source": "case-7", **fields},
            headers=bearer(key),
        )
    return response.status_code, response.json()


def test_an_upload_is_stored_with_provenance_and_found(
    empty: tuple[TestClient, dict[str, str]], dev: Path
) -> None:
    client, keys = empty
    status, body = upload(
        client,
        keys["ingest"],
        dev / OBAMA,
        source_url="https://evidence.example/obama.jpg",
        page_url="https://evidence.example/item/7",
        captured_at="2019-05-01",
    )
    assert status == 201 and body["created"] and body["faces_indexed"] == 1
    image = body["image"]
    assert image["file_name"] == "obama.jpg"
    [prov] = image["provenance"]
    assert prov["source"] == "case-7" and prov["captured_at"] == "2019-05-01"
    assert prov["page_url"] == "https://evidence.example/item/7"

    again, same = upload(client, keys["ingest"], dev / OBAMA)
    assert again == 200 and not same["created"] and same["image"]["id"] == image["id"]

    with open(dev / OBAMA_PROBE, "rb") as fh:
        found = client.post(
            "/v1/search",
            files={"image": ("probe.jpg", fh, "image/jpeg")},
            data=PURPOSE,
            headers=bearer(keys["search"]),
        ).json()
    best = found["matches"][0]
    assert best["image_id"] == image["id"] and best["is_match"]
    assert best["source_url"] == "https://evidence.example/obama.jpg"
    stored = client.get(best["image_url"], headers=bearer(keys["search"]))
    assert stored.content == (dev / OBAMA).read_bytes()


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"page_url": "javascript:alert(1)"}, "page_url must be an http(s) URL"),
        ({"source_url": "file:///etc/passwd"}, "source_url must be an http(s) URL"),
        ({"captured_at": "last tuesday"}, "captured_at must be an ISO 8601"),
        ({"source": "   "}, "source must not be blank"),
    ],
)
def test_bad_provenance_is_refused_before_storing(
    empty: tuple[TestClient, dict[str, str]], dev: Path, fields: dict[str, str], words: str
) -> None:
    client, keys = empty
    before = client.get("/v1/sources", headers=bearer(keys["search"])).json()["items"]
    status, body = upload(
        client, keys["ingest"], dev / "face_recognition/examples/biden.jpg", **fields
    )
    assert status == 400 and words in body["error"]["message"]
    after = client.get("/v1/sources", headers=bearer(keys["search"])).json()["items"]
    assert after == before


def test_an_unregistered_source_is_refused(
    empty: tuple[TestClient, dict[str, str]], dev: Path
) -> None:
    client, keys = empty
    status, body = upload(client, keys["ingest"], dev / OBAMA, source="no-basis")
    assert status == 404 and "is not registered" in body["error"]["message"]


def test_a_file_that_is_not_an_image_is_not_stored(
    empty: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    client, keys = empty
    fake = tmp_path / "notes.jpg"
    fake.write_bytes(b"meeting notes, not a photo")
    status, body = upload(client, keys["ingest"], fake)
    assert status == 400 and "not a recognised image" in body["error"]["message"]
