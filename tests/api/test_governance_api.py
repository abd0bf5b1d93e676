"""Sources, retention, erasure, objections and the audit log over the API, on real photos.

Each test that removes data works on its own copy of the test gallery.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facesearch import FaceSearch
from facesearch.serving.scheduler import RetentionSchedule
from tests.api.governance_app import found_files, gallery_copy
from tests.app_gallery import OBAMA_PROBE, PURPOSE, Gallery, bearer

# Captured 2012-2016 and kept ten years: expired by now. The 2017 and 2018 ones are not.
EXPIRED = {
    "face_recognition/examples/obama.jpg",
    "face_recognition/examples/biden.jpg",
    "face_recognition/examples/knn_examples/train/alex_lacamoire/img1.jpg",
    "face_recognition/examples/lin-manuel-miranda.png",
}


@pytest.fixture
def app(gallery: Gallery, tmp_path: Path) -> Iterator[tuple[TestClient, FaceSearch]]:
    with gallery_copy(gallery, tmp_path) as pair:
        yield pair


def newsroom_files(client: TestClient, gallery: Gallery) -> set[str]:
    page = client.get(
        "/v1/images",
        params={"source": "newsroom", "limit": 200},
        headers=bearer(gallery.keys["search"]),
    )
    return {str(Path(i["path"]).relative_to(gallery.dev)) for i in page.json()["items"]}


def test_sources_are_registered_read_and_changed_by_an_admin(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    admin = bearer(gallery.keys["admin"])
    lists = client.get("/v1/lawful-bases", headers=bearer(gallery.keys["search"])).json()
    assert "public_task" in {c["code"] for c in lists["lawful_bases"]}
    assert "legal_claims" in {c["code"] for c in lists["special_category_conditions"]}
    body = {
        "name": "case-1234",
        "lawful_basis": "legal_obligation",
        "special_category_condition": "legal_claims",
        "retention_days": 730,
        "jurisdictions": ["gb", "FR"],
        "controller": "Example Police",
        "contact": "dpo@example.org",
    }
    made = client.post("/v1/sources", json=body, headers=admin)
    assert made.status_code == 201, made.text
    source = made.json()
    assert source["jurisdictions"] == ["FR", "GB"] and source["images"] == 0
    again = client.post("/v1/sources", json=body, headers=admin)
    assert again.status_code == 400 and "already exists" in again.json()["error"]["message"]
    for bad in ({"lawful_basis": "because"}, {"retention_days": 0}, {"name": "../etc"}):
        refused = client.post("/v1/sources", json={**body, "name": "x2", **bad}, headers=admin)
        assert refused.status_code == 422, bad
    assert client.get("/v1/sources/x2", headers=admin).status_code == 404

    held = client.patch("/v1/sources/case-1234", json={"legal_hold": True}, headers=admin)
    assert held.status_code == 200 and held.json()["legal_hold"] is True
    assert held.json()["retention_days"] == 730  # untouched
    shown = client.get("/v1/sources/case-1234", headers=bearer(gallery.keys["search"])).json()
    assert shown["legal_hold"] and shown["controller"] == "Example Police"
    empty = client.patch("/v1/sources/case-1234", json={}, headers=admin)
    assert empty.status_code == 400 and "nothing to change" in empty.json()["error"]["message"]
    missing = client.patch("/v1/sources/nope", json={"legal_hold": True}, headers=admin)
    assert missing.status_code == 404
    changes = [
        (e.action, e.actor) for e in engine.audit.entries() if e.action.startswith("source.")
    ]
    admin_id = client.get("/v1/me", headers=admin).json()["id"]
    assert changes[-2:] == [("source.add", f"key:{admin_id}"), ("source.update", f"key:{admin_id}")]
    listed = client.get("/v1/sources", headers=bearer(gallery.keys["search"])).json()["items"]
    assert {"case-1234", "lfw", "newsroom"} == {s["name"] for s in listed}


def test_retention_over_the_api_keeps_held_sources_and_removes_expired_images(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, _ = app
    admin = bearer(gallery.keys["admin"])
    before = newsroom_files(client, gallery)
    assert before > EXPIRED
    dry = client.post("/v1/retention/run", params={"dry_run": "true"}, headers=admin).json()
    assert dry["dry_run"] and dry["images_removed"] == len(EXPIRED)
    assert newsroom_files(client, gallery) == before

    client.patch("/v1/sources/newsroom", json={"legal_hold": True}, headers=admin)
    held = client.post("/v1/retention/run", headers=admin).json()
    assert held["images_removed"] == 0 and newsroom_files(client, gallery) == before

    client.patch("/v1/sources/newsroom", json={"legal_hold": False}, headers=admin)
    done = client.post("/v1/retention/run", headers=admin).json()
    assert done["images_removed"] == len(EXPIRED) and done["receipt_id"]
    assert newsroom_files(client, gallery) == before - EXPIRED
    assert "obama.jpg" not in found_files(client, gallery, gallery.dev / OBAMA_PROBE)


def test_the_server_runs_retention_on_its_schedule(gallery: Gallery, tmp_path: Path) -> None:
    with gallery_copy(gallery, tmp_path, retention_interval_minutes=60) as (client, engine):
        schedule: RetentionSchedule = client.app.state.retention  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while schedule.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert schedule.running and schedule.runs == 1  # once at start-up, then hourly
        assert schedule.last is not None and schedule.last.images_removed == len(EXPIRED)
        assert newsroom_files(client, gallery) & EXPIRED == set()
        [entry] = list(engine.audit.entries(action="retention"))
        assert entry.actor == "system:retention-schedule"
    assert not schedule.running  # stopped with the app


def test_the_schedule_repeats_and_survives_a_failed_run(gallery: Gallery, tmp_path: Path) -> None:
    with gallery_copy(gallery, tmp_path) as (client, engine):
        gateway = client.app.state.gateway  # type: ignore[attr-defined]
        thumbnails = client.app.state.thumbnails  # type: ignore[attr-defined]

        async def run_for(seconds: float, schedule: RetentionSchedule) -> None:
            schedule.start()
            await asyncio.sleep(seconds)
            await schedule.stop()

        quick = RetentionSchedule(gateway, thumbnails, 0.05)
        asyncio.run(run_for(0.6, quick))
        assert quick.runs >= 3
        assert len(list(engine.audit.entries(action="retention"))) == quick.runs
        broken = RetentionSchedule(gateway, thumbnails, 0.05)
        engine.audit.store.db.execute("DROP TABLE audit")  # every run now fails to record
        asyncio.run(run_for(0.3, broken))
        assert broken.runs == 0 and broken.last is None


def test_erasure_by_person_reviews_then_erases_and_thumbnails_go_too(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    admin = bearer(gallery.keys["admin"])
    photo = (gallery.dev / OBAMA_PROBE).read_bytes()
    review = client.post(
        "/v1/erasures/review", files={"image": ("p.jpg", photo, "image/jpeg")}, headers=admin
    )
    assert review.status_code == 200, review.text
    found = review.json()
    assert found["threshold"] == engine.settings.governance.strict_threshold
    assert [m["file_name"] for m in found["matches"]] == ["obama.jpg"]
    [match] = found["matches"]
    thumb = client.get(match["thumbnail_url"], headers=admin)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"

    dry = client.post(
        "/v1/erasures", json={"image_ids": [match["image_id"]], "dry_run": True}, headers=admin
    ).json()
    assert dry["dry_run"] and dry["face_ids"] == [match["face_id"]]
    assert client.get(match["thumbnail_url"], headers=admin).status_code == 200

    erased = client.post(
        "/v1/erasures",
        json={"image_ids": [match["image_id"]], "reason": "Art. 17 request R-19"},
        headers=admin,
    )
    assert erased.status_code == 200
    receipt = erased.json()
    assert receipt["images_removed"] == 1 and receipt["scope"]["reason"] == "Art. 17 request R-19"
    assert client.get(match["thumbnail_url"], headers=admin).status_code == 404
    assert match["face_id"] not in client.app.state.thumbnails._items  # type: ignore[attr-defined]
    assert "obama.jpg" not in found_files(client, gallery, gallery.dev / OBAMA_PROBE)
    again = client.post(
        "/v1/erasures/review", files={"image": ("p.jpg", photo, "image/jpeg")}, headers=admin
    )
    assert again.json()["matches"] == []
    nothing = client.post("/v1/erasures", json={}, headers=admin)
    assert nothing.status_code == 400 and "say what to erase" in nothing.json()["error"]["message"]
    gone = client.post("/v1/erasures", json={"image_ids": [999999]}, headers=admin)
    assert gone.status_code == 404


def test_an_objection_hides_the_person_until_it_is_removed(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    admin = bearer(gallery.keys["admin"])
    obama = gallery.dev / "face_recognition/examples/obama.jpg"
    probe = gallery.dev / OBAMA_PROBE
    assert "obama.jpg" in found_files(client, gallery, probe)
    files = {"image": ("o.jpg", obama.read_bytes(), "image/jpeg")}
    refused = client.post("/v1/suppressions", files=files, headers=admin)
    assert refused.status_code == 400 and "consent_ref" in refused.json()["error"]["message"]
    added = client.post(
        "/v1/suppressions",
        files=files,
        data={"consent_ref": "OBJ-2026-001", "note": "by letter"},
        headers=admin,
    )
    assert added.status_code == 201, added.text
    entry = added.json()
    assert entry["consent_ref"] == "OBJ-2026-001" and "template" not in entry
    assert "obama.jpg" not in found_files(client, gallery, probe)
    listed = client.get("/v1/suppressions", headers=admin).json()["items"]
    assert [s["id"] for s in listed] == [entry["id"]]
    removed = client.delete(f"/v1/suppressions/{entry['id']}", headers=admin)
    assert removed.status_code == 200
    assert client.delete(f"/v1/suppressions/{entry['id']}", headers=admin).status_code == 404
    assert "obama.jpg" in found_files(client, gallery, probe)
    actions = [e.action for e in engine.audit.entries() if e.action.startswith("suppression")]
    assert actions == ["suppression.add", "suppression.remove"]


def test_the_audit_log_is_read_by_case_a_page_at_a_time_and_verified(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    auditor = bearer(gallery.keys["auditor"])
    probe = (gallery.dev / OBAMA_PROBE).read_bytes()
    for _ in range(3):
        client.post(
            "/v1/search",
            files={"image": ("p.jpg", probe, "image/jpeg")},
            data={"purpose": "audit test", "case_ref": "CASE-42"},
            headers=bearer(gallery.keys["search"]),
        )
    client.post(
        "/v1/search",
        files={"image": ("p.jpg", probe, "image/jpeg")},
        data=PURPOSE,
        headers=bearer(gallery.keys["search"]),
    )
    seen, cursor = [], None
    while True:
        params = {"case_ref": "CASE-42", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/audit", params=params, headers=auditor).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 3 and {e["case_ref"] for e in seen} == {"CASE-42"}
    assert all(e["action"] == "search" and e["purpose"] == "audit test" for e in seen)
    assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen)
    later = client.get(
        "/v1/audit", params={"action": "search", "since": "2999-01-01"}, headers=auditor
    )
    assert later.json()["items"] == []
    bad = client.get("/v1/audit", params={"since": "yesterday"}, headers=auditor)
    assert bad.status_code == 400
    verified = client.get("/v1/audit/verify", headers=auditor).json()
    assert verified["ok"] and verified["entries"] == verified["head_seq"]
    # No FACESEARCH_AUDIT_KEY here: the answer says what an intact unkeyed chain cannot prove.
    assert verified["keyed_from"] is None and "unkeyed" in verified["warning"]
    report = client.get("/v1/report", headers=auditor).json()
    assert report["searches_by_purpose"]["audit test"] == 3
    assert {s["name"] for s in report["sources"]} == {"lfw", "newsroom"}
    reads = list(engine.audit.entries(action="audit.read"))
    assert reads and reads[-1].actor.startswith("key:")
    engine.audit.store.db.execute("UPDATE audit SET actor = 'someone else' WHERE seq = 2")
    tampered = client.get("/v1/audit/verify", headers=auditor).json()
    assert not tampered["ok"] and tampered["problem"] == "entry 2 was edited"
