"""POST /v1/ingest-jobs: photos, a zipped folder and manifests ingested in the background,
with progress, failed files and their reasons; unsafe uploads refused with nothing stored."""

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
from tests.app_gallery import NO_FACE, OBAMA_PROBE, PURPOSE, bearer, register

OBAMA = "face_recognition/examples/obama.jpg"
BIDEN = "face_recognition/examples/biden.jpg"
Client = tuple[TestClient, dict[str, str], Path]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    home = tmp_path_factory.mktemp("jobs") / "home"
    store = SqliteAccountStore(home / "accounts.sqlite")
    keys = {r: store.create_key(r, r)[1] for r in ("ingest", "search", "admin")}
    keys["other"] = store.create_key("other", "ingest")[1]
    # A small unpacked-size limit, so that a zip bomb costs the test nothing.
    settings = Settings(home=home, workers=1, limits={"max_archive_bytes": 8 * 1024 * 1024})
    with (
        FaceSearch(settings) as engine,
        TestClient(create_app(engine, accounts=store), base_url="https://testserver") as client,
    ):
        register(engine, "case-9")
        yield client, keys, home


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def send(client: TestClient, key: str, files: list[tuple[str, bytes]]) -> Any:
    return client.post(
        "/v1/ingest-jobs",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        data={"source": "case-9"},
        headers=bearer(key),
    )


def finished(client: TestClient, key: str, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(location, headers=bearer(key)).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError("the ingest job did not finish")


def stored_uploads(home: Path) -> list[str]:
    uploads = home / "uploads"
    return sorted(p.name for p in uploads.rglob("*") if p.is_file()) if uploads.exists() else []


def test_a_zipped_folder_is_ingested_with_its_failures_listed(app: Client, dev: Path) -> None:
    client, keys, home = app
    folder = zipped(
        {
            "trip/obama.jpg": (dev / OBAMA).read_bytes(),
            "trip/coffee.png": (dev / NO_FACE).read_bytes(),
            "trip/broken.jpg": (dev / BIDEN).read_bytes()[:300],
            "trip/notes.txt": b"not a photo",
            "__MACOSX/trip/._obama.jpg": b"resource fork",
        }
    )
    response = send(client, keys["ingest"], [("trip.zip", folder)])
    assert response.status_code == 202, response.text
    assert response.json()["files"] == 4  # the macOS resource fork is no file of the folder
    job = finished(client, keys["ingest"], response.headers["Location"])
    assert job["state"] == "done" and job["done"] == 4
    assert job["images_added"] == 2 and job["faces_indexed"] == 1
    reasons = {f["file"]: f["reason"] for f in job["failed"]}
    assert set(reasons) == {"trip.zip/trip/broken.jpg", "trip.zip/trip/notes.txt"}
    assert "not an image file (.txt)" in reasons["trip.zip/trip/notes.txt"]

    # The failed files are not kept; the source's failures list them with the reasons.
    kept = stored_uploads(home)
    assert len(kept) == 2 and not any("broken" in n or "notes" in n for n in kept)
    listed = client.get("/v1/sources/case-9/failures", headers=bearer(keys["ingest"])).json()
    assert {f["reason"].split(":")[0] for f in listed} == set(reasons)

    with open(dev / OBAMA_PROBE, "rb") as fh:
        found = client.post(
            "/v1/search",
            files={"image": ("probe.jpg", fh, "image/jpeg")},
            data=PURPOSE,
            headers=bearer(keys["search"]),
        ).json()
    assert found["matches"][0]["is_match"] and found["matches"][0]["file_name"] == "obama.jpg"


def test_a_manifest_gives_provenance_and_may_not_reach_outside_the_upload(
    app: Client, dev: Path
) -> None:
    client, keys, _ = app
    manifest = (
        b"path,source_url,captured_at\n"
        b"biden.jpg,https://evidence.example/biden.jpg,2020-02-02\n"
        b"/etc/hostname,,\n"
        b"../../accounts.sqlite,,\n"
    )
    response = send(
        client,
        keys["ingest"],
        [("biden.jpg", (dev / BIDEN).read_bytes()), ("rows.csv", manifest)],
    )
    assert response.status_code == 202, response.text
    job = finished(client, keys["ingest"], response.headers["Location"])
    assert job["images_added"] == 1 and len(job["failed"]) == 2
    assert all("outside this upload" in f["reason"] for f in job["failed"])
    images = client.get("/v1/images?source=case-9", headers=bearer(keys["search"])).json()
    [biden] = [i for i in images["items"] if i["file_name"] == "biden.jpg"]
    assert biden["provenance"][0]["source_url"] == "https://evidence.example/biden.jpg"
    assert biden["provenance"][0]["captured_at"] == "2020-02-02"


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ([("evil.zip", zipped({"../../evil.jpg": b"x"}))], "path traversal"),
        ([("abs.zip", zipped({"/etc/cron.d/evil.jpg": b"x"}))], "path traversal"),
        ([("bomb.zip", zipped({"zeros.jpg": bytes(16 * 1024 * 1024)}))], "zip bomb"),
        ([("notes.txt", b"meeting notes")], "not an image, a video, a zip or a manifest"),
        ([("half.zip", zipped({"a.jpg": b"x" * 4000})[:100])], "cannot be read as a zip"),
    ],
)
def test_an_unsafe_upload_is_refused_and_nothing_is_stored(
    app: Client, files: list[tuple[str, bytes]], words: str
) -> None:
    client, keys, home = app
    before = stored_uploads(home)
    response = send(client, keys["ingest"], files)
    assert response.status_code == 400 and words in response.json()["error"]["message"]
    assert stored_uploads(home) == before


def test_only_ingest_roles_send_and_only_the_sender_reads_a_job(app: Client, dev: Path) -> None:
    client, keys, _ = app
    photo = [("obama.jpg", (dev / OBAMA).read_bytes())]
    assert send(client, keys["search"], photo).status_code == 403
    response = send(client, keys["ingest"], photo)
    location = response.headers["Location"]
    finished(client, keys["ingest"], location)
    assert client.get(location, headers=bearer(keys["other"])).status_code == 404
    assert client.get(location, headers=bearer(keys["admin"])).json()["done"] == 1
    missing = client.post(
        "/v1/ingest-jobs",
        files=[("files", ("obama.jpg", photo[0][1], "image/jpeg"))],
        data={"source": "nobody"},
        headers=bearer(keys["ingest"]),
    )
    assert missing.status_code == 404


def test_a_video_upload_is_searchable_and_a_result_opens_it_at_the_moment(
    app: Client, dev: Path, tmp_path: Path
) -> None:
    from tests.integration.test_video import make_clip, still

    client, keys, _ = app
    clip = make_clip(tmp_path / "door.mp4", [(still(dev / BIDEN), 2.0), (still(dev / OBAMA), 2.0)])
    response = send(client, keys["ingest"], [("door.mp4", clip.read_bytes())])
    assert response.status_code == 202, response.text
    job = finished(client, keys["ingest"], response.headers["Location"])
    assert job["state"] == "done" and job["failed"] == [] and job["faces_indexed"] == 2
    with open(dev / OBAMA_PROBE, "rb") as fh:
        found = client.post(
            "/v1/search",
            files={"image": ("probe.jpg", fh, "image/jpeg")},
            data={**PURPOSE, "source": "case-9"},
            headers=bearer(keys["search"]),
        ).json()
    from_video = [m for m in found["matches"] if m["moment_url"]]
    best = from_video[0]
    assert best["is_match"]
    url, moment = best["moment_url"].split("#t=")
    # The frame is this row's image, or a copy folded into it (the still of a stored photo).
    frame = int(url.split("/")[3])
    assert frame in {best["image_id"], *(c["image_id"] for c in best["copies"])}
    assert url == f"/v1/images/{frame}/video" and 2.0 <= float(moment) < 4.0
    part = client.get(url, headers={**bearer(keys["search"]), "Range": "bytes=0-99"})
    assert part.status_code == 206 and part.headers["content-type"] == "video/mp4"
    assert part.content == clip.read_bytes()[:100]

    # Erasing one appearance keeps the video (the other still names it); erasing the
    # last one takes the uploaded video too.
    def videos() -> list[str]:
        return [n for n in stored_uploads(app[2]) if n.endswith("-door.mp4")]

    frames = [int(m["moment_url"].split("/")[3]) for m in found["matches"] if m["moment_url"]]
    frames += [
        i["id"]
        for i in client.get(
            "/v1/images?source=case-9&limit=200", headers=bearer(keys["search"])
        ).json()["items"]
        if any(p["video"] for p in i["provenance"]) and i["id"] not in frames
    ]
    admin = bearer(keys["admin"])
    assert len(frames) == 2 and len(videos()) == 1
    client.post("/v1/erasures", json={"image_ids": frames[:1], "reason": "t"}, headers=admin)
    assert len(videos()) == 1
    client.post("/v1/erasures", json={"image_ids": frames[1:], "reason": "t"}, headers=admin)
    assert videos() == []
