"""Searching over HTTP finds the labelled person first, with provenance and thumbnails."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from tests.app_gallery import (
    NO_FACE,
    OBAMA_PROBE,
    PURPOSE,
    TWO_PEOPLE,
    Gallery,
    archive_url,
    bearer,
    page_url,
)


def search(client: TestClient, gallery: Gallery, photo: Path, **form: object) -> dict:
    with open(photo, "rb") as fh:
        response = client.post(
            "/v1/search",
            files={"image": (photo.name, fh, "image/jpeg")},
            data={**PURPOSE, **{k: str(v) for k, v in form.items()}},
            headers=bearer(gallery.keys["search"]),
        )
    assert response.status_code == 200, response.text
    return response.json()


def test_every_held_out_photo_finds_its_person_first(client: TestClient, gallery: Gallery) -> None:
    for probe, label in gallery.probes.items():
        body = search(client, gallery, Path(probe), top_k=5)
        best = body["matches"][0]
        assert gallery.identity[best["path"]] == label, (probe, best["path"])
        assert best["is_match"] and best["similarity"] >= body["threshold"]
        assert [m["rank"] for m in body["matches"]] == list(range(1, len(body["matches"]) + 1))
        sims = [m["similarity"] for m in body["matches"]]
        assert sims == sorted(sims, reverse=True)


def test_a_match_carries_its_provenance_and_links(client: TestClient, gallery: Gallery) -> None:
    body = search(client, gallery, gallery.dev / OBAMA_PROBE)
    best = body["matches"][0]
    assert best["file_name"] == "obama.jpg" and best["source"] == "newsroom"
    assert best["source_url"] == archive_url("obama.jpg")
    assert best["page_url"] == page_url("obama.jpg")
    assert best["captured_at"] == "2012-11-07"
    assert best["thumbnail_url"] == f"/v1/faces/{best['face_id']}/thumbnail"
    assert best["image_url"] == f"/v1/images/{best['image_id']}/file"
    box = best["box"]
    assert box["x2"] > box["x1"] and box["y2"] > box["y1"]
    assert body["notice"].startswith("A match is an investigative lead")
    assert {"decode", "detect", "embed", "search"} <= set(body["timings_ms"])
    [face] = body["probe"]["faces"]
    assert face["index"] == 0 and body["face"] == 0


def test_response_headers_carry_request_id_and_timing(client: TestClient, gallery: Gallery) -> None:
    with open(gallery.dev / OBAMA_PROBE, "rb") as fh:
        response = client.post(
            "/v1/search",
            files={"image": ("p.jpg", fh, "image/jpeg")},
            data=PURPOSE,
            headers={**bearer(gallery.keys["search"]), "X-Request-ID": "case-42.probe-1"},
        )
    assert response.headers["x-request-id"] == "case-42.probe-1"
    assert response.json()["request_id"] == "case-42.probe-1"
    stages = response.headers["server-timing"]
    for stage in ("decode", "detect", "embed", "search", "respond", "total"):
        assert f"{stage};dur=" in stages


def test_thumbnail_and_file_of_a_match(client: TestClient, gallery: Gallery) -> None:
    best = search(client, gallery, gallery.dev / OBAMA_PROBE)["matches"][0]
    auth = bearer(gallery.keys["search"])
    thumb = client.get(best["thumbnail_url"], headers=auth)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    crop = Image.open(io.BytesIO(thumb.content))
    assert max(crop.size) <= 160 and min(crop.size) > 40
    assert client.get(best["thumbnail_url"], headers=auth).content == thumb.content
    original = client.get(best["image_url"], headers=auth)
    assert original.status_code == 200 and original.headers["content-type"] == "image/jpeg"
    assert original.content == (gallery.dev / "face_recognition/examples/obama.jpg").read_bytes()


def test_search_with_a_stored_image_finds_itself(client: TestClient, gallery: Gallery) -> None:
    auth = bearer(gallery.keys["search"])
    first = client.get("/v1/images", params={"limit": 1}, headers=auth).json()["items"][0]
    response = client.post(
        "/v1/search", data={"image_id": str(first["id"]), **PURPOSE}, headers=auth
    )
    assert response.status_code == 200, response.text
    best = response.json()["matches"][0]
    assert best["image_id"] == first["id"] and best["similarity"] > 0.99


def test_the_face_parameter_picks_the_probe_face(client: TestClient, gallery: Gallery) -> None:
    two = gallery.dev / TWO_PEOPLE
    found = {}
    for face in (0, 1):
        body = search(client, gallery, two, face=face, top_k=3)
        assert len(body["probe"]["faces"]) >= 2 and body["face"] == face
        found[face] = gallery.identity[body["matches"][0]["path"]]
    # The two largest faces are the two men, each found first in the gallery.
    assert set(found.values()) == {"face_recognition:obama", "face_recognition:biden"}
    faces = len(body["probe"]["faces"])
    with open(two, "rb") as fh:
        response = client.post(
            "/v1/search",
            files={"image": ("two.jpg", fh, "image/jpeg")},
            data={"face": str(faces), **PURPOSE},
            headers=bearer(gallery.keys["search"]),
        )
    assert response.status_code == 400
    assert f"face {faces} does not exist" in response.json()["error"]["message"]


def test_a_photo_without_a_face_is_a_clear_422(client: TestClient, gallery: Gallery) -> None:
    with open(gallery.dev / NO_FACE, "rb") as fh:
        response = client.post(
            "/v1/search",
            files={"image": ("coffee.png", fh, "image/png")},
            data=PURPOSE,
            headers=bearer(gallery.keys["search"]),
        )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "no_face_found"


def test_filters_by_source_and_capture_date(client: TestClient, gallery: Gallery) -> None:
    probe = gallery.dev / OBAMA_PROBE
    only_lfw = search(client, gallery, probe, source="lfw", top_k=50)
    assert only_lfw["matches"] and {m["source"] for m in only_lfw["matches"]} == {"lfw"}
    assert not only_lfw["matches"][0]["is_match"]  # Obama is not among the LFW people here
    dated = search(
        client, gallery, probe, captured_from="2016-01-01", captured_to="2016-12-31", top_k=50
    )
    names = {m["file_name"] for m in dated["matches"]}
    assert names == {"img1.jpg", "lin-manuel-miranda.png"}  # the two captured in 2016


def test_images_are_listed_a_page_at_a_time(client: TestClient, gallery: Gallery) -> None:
    auth = bearer(gallery.keys["search"])
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/images", params=params, headers=auth).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(gallery.identity)
    one = client.get(f"/v1/images/{seen[0]}", headers=auth).json()
    assert one["provenance"][0]["path"] in gallery.identity
    bad = client.get("/v1/images", params={"cursor": "not-a-cursor"}, headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"
    missing = client.get("/v1/images/999999", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_sources_stats_and_health(client: TestClient, gallery: Gallery) -> None:
    page = client.get("/v1/sources", params={"limit": 1}, headers=bearer(gallery.keys["search"]))
    first = page.json()
    assert [s["name"] for s in first["items"]] == ["lfw"]
    second = client.get(
        "/v1/sources",
        params={"limit": 1, "cursor": first["next_cursor"]},
        headers=bearer(gallery.keys["search"]),
    ).json()
    assert [s["name"] for s in second["items"]] == ["newsroom"] and second["next_cursor"] is None
    stats = client.get("/v1/stats", headers=bearer(gallery.keys["auditor"])).json()
    assert stats["images"] == len(gallery.identity) and stats["index"]["consistent"]
    assert "home" not in stats
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["faces"] == stats["faces"]


def test_other_requests_are_answered_while_a_big_photo_is_analysed(
    client: TestClient, gallery: Gallery
) -> None:
    big = gallery.dev / "compreface/001_A.jpg"  # a 4000 px phone photo: seconds of detection
    outcome: dict[str, int] = {}

    def slow_search() -> None:
        with open(big, "rb") as fh:
            response = client.post(
                "/v1/search",
                files={"image": ("big.jpg", fh, "image/jpeg")},
                data=PURPOSE,
                headers=bearer(gallery.keys["search"]),
            )
        outcome["status"] = response.status_code

    worker = threading.Thread(target=slow_search)
    worker.start()
    try:
        gateway = client.app.state.gateway  # type: ignore[attr-defined]
        while not gateway.busy and worker.is_alive():
            threading.Event().wait(0.01)
        answered = client.get("/v1/sources", headers=bearer(gallery.keys["search"]))
        assert answered.status_code == 200
        assert worker.is_alive(), "the big photo should still be in analysis"
    finally:
        worker.join()
    assert outcome["status"] in (200, 422)


def test_a_search_without_purpose_or_case_is_refused_and_one_with_them_is_audited(
    client: TestClient, gallery: Gallery
) -> None:
    auth = bearer(gallery.keys["search"])
    photo = (gallery.dev / OBAMA_PROBE).read_bytes()
    for form in (
        {},
        {"purpose": "fraud inquiry"},
        {"case_ref": "C-9"},
        {"purpose": " ", "case_ref": "C-9"},
    ):
        response = client.post(
            "/v1/search", files={"image": ("p.jpg", photo, "image/jpeg")}, data=form, headers=auth
        )
        assert response.status_code == 400, form
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert "purpose and a case reference" in error["message"]
    engine = client.app.state.gateway.engine  # type: ignore[attr-defined]
    form = {"purpose": "fraud inquiry", "case_ref": "C-9", "jurisdiction": "gb"}
    ok = client.post(
        "/v1/search", files={"image": ("p.jpg", photo, "image/jpeg")}, data=form, headers=auth
    )
    assert ok.status_code == 200
    [entry] = [e for e in engine.audit.entries(case_ref="C-9")]
    me = client.get("/v1/me", headers=auth).json()
    assert (entry.action, entry.actor, entry.purpose) == (
        "search",
        f"key:{me['id']}",
        "fraud inquiry",
    )
    assert entry.details["results"] == len(ok.json()["matches"])
    mixed = client.post(
        "/v1/search",
        files={"image": ("p.jpg", photo, "image/jpeg")},
        data=form,
        headers={**auth, "X-Requester-Jurisdiction": "FR"},
    )
    assert mixed.status_code == 400 and "differ" in mixed.json()["error"]["message"]


def test_blocked_jurisdictions_get_403_and_the_purpose_rule_can_be_switched_off(
    gallery: Gallery,
) -> None:
    from facesearch import FaceSearch, Settings
    from facesearch.app import create_app

    settings = Settings(
        home=gallery.home,
        workers=1,
        governance={
            "retention_interval_minutes": 0,
            "blocked_jurisdictions": ["RU"],
            "api_require_purpose": False,
        },
    )
    photo = (gallery.dev / OBAMA_PROBE).read_bytes()
    with (
        FaceSearch(settings) as engine,
        TestClient(create_app(engine), base_url="https://testserver") as local,
    ):
        auth = bearer(gallery.keys["search"])
        files = {"image": ("p.jpg", photo, "image/jpeg")}
        header = local.post(
            "/v1/search", files=files, headers={**auth, "X-Requester-Jurisdiction": "ru"}
        )
        assert header.status_code == 403
        assert "RU are blocked" in header.json()["error"]["message"]
        field = local.post("/v1/search", files=files, data={"jurisdiction": "RU"}, headers=auth)
        assert field.status_code == 403
        allowed = local.post("/v1/search", files=files, data={"jurisdiction": "GB"}, headers=auth)
        assert allowed.status_code == 200
        assert allowed.json()["matches"][0]["file_name"] == "obama.jpg"
