"""/v1/persons: a source that declares grouping gets persons as photos arrive (here by an
ingest job); people name and correct them, search with them, and review a person's
images before erasure; roles decide who may do which."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from facesearch import FaceSearch, Settings
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.app import create_app
from tests.app_gallery import PURPOSE, bearer, register

PEOPLE = ("Justin_Leonard", "Martha_Burk")
Site = tuple[TestClient, dict[str, str]]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, dev: Path) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("people-api") / "home"
    store = SqliteAccountStore(home / "accounts.sqlite")
    keys = {r: store.create_key(r, r)[1] for r in ("admin", "ingest", "search")}
    with (
        FaceSearch(Settings(home=home, workers=1)) as engine,
        TestClient(create_app(engine, accounts=store), base_url="https://testserver") as client,
    ):
        register(engine, "album")
        admin = bearer(keys["admin"])
        declared = client.patch("/v1/sources/album", json={"group_people": True}, headers=admin)
        assert declared.status_code == 200 and declared.json()["group_people"] is True
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            for p in PEOPLE:
                for n in (1, 2, 3):
                    zf.write(dev / f"lfw/{p}/{p}_000{n}.jpg", f"{p}/{n}.jpg")
        sent = client.post(
            "/v1/ingest-jobs",
            files=[("files", ("album.zip", buffer.getvalue(), "application/zip"))],
            data={"source": "album"},
            headers=bearer(keys["ingest"]),
        )
        location = sent.headers["Location"]
        deadline = time.monotonic() + 120
        while client.get(location, headers=admin).json()["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        yield client, keys


def persons(client: TestClient, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get("/v1/persons", headers=bearer(key)).json()["items"]
    return items


def test_photos_arriving_in_a_declaring_source_are_grouped(site: Site) -> None:
    client, keys = site
    found = persons(client, keys["search"])
    assert sorted(len(p["faces"]) for p in found) == [3, 3]
    detail = client.get(f"/v1/persons/{found[0]['id']}", headers=bearer(keys["search"])).json()
    folders = {Path(r["path"]).name.split("-", 1)[1] for r in detail["image_records"]}
    assert folders == {"1.jpg", "2.jpg", "3.jpg"}
    assert all(r["provenance"][0]["source"] == "album" for r in detail["image_records"])


def test_people_name_split_and_merge_and_roles_are_kept(site: Site) -> None:
    client, keys = site
    admin, search = bearer(keys["admin"]), bearer(keys["search"])
    first, second = persons(client, keys["admin"])
    url = f"/v1/persons/{first['id']}"
    assert client.patch(url, json={"name": "x"}, headers=search).status_code == 403
    assert client.get("/v1/persons", headers=bearer(keys["ingest"])).status_code == 403
    named = client.patch(url, json={"name": "  Witness   A "}, headers=admin).json()
    assert named["name"] == "Witness A"
    split = client.post(f"{url}/split", json={"faces": first["faces"][:1]}, headers=admin).json()
    assert len(split["kept"]["faces"]) == 2 and len(split["new"]["faces"]) == 1
    regroup = client.post("/v1/persons/group", json={"full": True}, headers=admin).json()
    assert regroup["sources"] == ["album"]
    after = {p["id"]: p for p in persons(client, keys["admin"])}
    assert after[split["new"]["id"]]["faces"] == first["faces"][:1]  # the split stuck
    merged = client.post(
        f"{url}/merge", json={"others": [split["new"]["id"]]}, headers=admin
    ).json()
    assert sorted(merged["faces"]) == sorted(first["faces"]) and merged["name"] == "Witness A"
    missing = client.post(f"{url}/merge", json={"others": [999999]}, headers=admin)
    assert missing.status_code == 404
    assert second["id"] in {p["id"] for p in persons(client, keys["admin"])}


def test_search_with_a_person_needs_a_purpose_and_review_lists_their_images(site: Site) -> None:
    client, keys = site
    target = persons(client, keys["search"])[0]
    url = f"/v1/persons/{target['id']}/search"
    refused = client.post(url, json={}, headers=bearer(keys["search"]))
    assert refused.status_code == 400
    found = client.post(url, json=PURPOSE, headers=bearer(keys["search"])).json()
    likely = {m["image_id"] for m in found["matches"] if m["is_match"]}
    assert likely == set(target["images"])
    assert (
        client.get(f"/v1/persons/{target['id']}/review", headers=bearer(keys["search"])).status_code
        == 403
    )
    review = client.get(f"/v1/persons/{target['id']}/review", headers=bearer(keys["admin"])).json()
    assert {m["image_id"] for m in review["matches"]} == set(target["images"])
    report = client.post(
        f"/v1/persons/{target['id']}/access-request", headers=bearer(keys["admin"])
    ).json()
    assert report["images_found"] == len(target["images"])
