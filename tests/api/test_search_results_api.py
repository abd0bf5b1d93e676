"""Results an investigator can act on: chance figures and bands, searching again from a
result, several probes of one person."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from tests.app_gallery import OBAMA_PROBE, PURPOSE, Gallery, bearer

OTHER_OBAMA = "face_recognition/tests/test_images/obama3.jpg"  # not in the gallery


def post(client: TestClient, gallery: Gallery, photos: list[Path], **form: Any) -> Any:
    files = [("image", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
    data: dict[str, Any] = {**PURPOSE, **form}
    return client.post(
        "/v1/search", files=files or None, data=data, headers=bearer(gallery.keys["search"])
    )


def test_every_result_says_how_many_other_people_would_score_as_high(
    client: TestClient, gallery: Gallery
) -> None:
    body = post(client, gallery, [gallery.dev / OBAMA_PROBE], top_k=10).json()
    faces = client.get("/v1/stats", headers=bearer(gallery.keys["admin"])).json()["faces"]
    assert body["faces_searched"] == faces
    best, *rest = body["matches"]
    assert best["file_name"] == "obama.jpg"
    assert best["band"] == "strong" and body["reliable"] is True
    assert body["verdict"].startswith("Best result: strong")
    expected = [m["expected_false_matches"] for m in body["matches"]]
    assert expected == sorted(expected)  # a lower similarity is matched by more people
    assert all(m["band"] in ("strong", "possible", "weak lead", "chance") for m in rest)
    # A different person ranks second at best: in a gallery this small that is chance.
    assert rest[-1]["band"] == "chance"
    assert best["probes_matched"] == [0] and rest[-1]["probes_matched"] == []
    # The tile's picture: the whole image, small, in the proportions the box is given in.
    thumb = client.get(best["image_thumbnail_url"], headers=bearer(gallery.keys["search"]))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as small:
        image = client.get(
            f"/v1/images/{best['image_id']}", headers=bearer(gallery.keys["search"])
        ).json()
        assert max(small.size) == 320
        assert abs(small.width / small.height - image["width"] / image["height"]) < 0.02


def test_a_filtered_search_counts_only_the_faces_it_searched(
    client: TestClient, gallery: Gallery
) -> None:
    everything = post(client, gallery, [gallery.dev / OBAMA_PROBE]).json()
    newsroom = post(client, gallery, [gallery.dev / OBAMA_PROBE], source="newsroom").json()
    assert 0 < newsroom["faces_searched"] < everything["faces_searched"]
    a, b = everything["matches"][0], newsroom["matches"][0]
    assert a["face_id"] == b["face_id"]
    assert b["expected_false_matches"] < a["expected_false_matches"]


def test_a_result_is_searched_again_by_its_face_and_audited_under_the_same_case(
    client: TestClient, gallery: Gallery
) -> None:
    first = post(client, gallery, [gallery.dev / OBAMA_PROBE]).json()
    face_id = first["matches"][0]["face_id"]
    again = post(client, gallery, [], face_id=face_id, case_ref="C-AGAIN")
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["probe"] is None and body["face_ids"] == [face_id]
    assert face_id not in [m["face_id"] for m in body["matches"]]  # not its own result
    engine = client.app.state.gateway.engine  # type: ignore[attr-defined]
    [entry] = list(engine.audit.entries(case_ref="C-AGAIN"))
    assert entry.action == "search" and entry.purpose == PURPOSE["purpose"]
    assert entry.details["probe_face_ids"] == [face_id]
    image = client.get(
        f"/v1/images/{first['matches'][0]['image_id']}", headers=bearer(gallery.keys["search"])
    ).json()
    assert entry.details["probe_sha256"] == image["sha256"]  # the face's image names it
    assert entry.details["matched"][0][:2] == [
        body["matches"][0]["image_id"],
        body["matches"][0]["face_id"],
    ]
    missing = post(client, gallery, [], face_id=999_999)
    assert missing.status_code == 404 and "no face with id 999999" in missing.text


def test_two_photos_of_one_person_search_together_and_say_which_matched(
    client: TestClient, gallery: Gallery
) -> None:
    photos = [gallery.dev / OBAMA_PROBE, gallery.dev / OTHER_OBAMA]
    for combine in ("max", "mean"):
        response = post(client, gallery, photos, combine=combine, top_k=5)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["combine"] == combine and len(body["probes"]) == 2
        best = body["matches"][0]
        assert best["file_name"] == "obama.jpg"
        assert best["probes_matched"] == [0, 1]
        assert best["band"] in ("strong", "possible")
    single = post(client, gallery, photos[:1], top_k=5).json()
    double = post(client, gallery, photos, combine="max", top_k=5).json()
    assert double["faces_searched"] == 2 * single["faces_searched"]  # two chances each
    wrong = post(client, gallery, photos, combine="median")
    assert wrong.status_code == 400 and "max, mean" in wrong.json()["error"]["message"]


def test_a_photo_and_a_stored_face_search_together(client: TestClient, gallery: Gallery) -> None:
    first = post(client, gallery, [gallery.dev / OBAMA_PROBE]).json()
    face_id = first["matches"][0]["face_id"]
    body = post(client, gallery, [gallery.dev / OTHER_OBAMA], face_id=face_id).json()
    assert body["face_ids"] == [face_id] and len(body["probes"]) == 1
    assert face_id not in [m["face_id"] for m in body["matches"]]


def test_a_stranger_gets_no_reliable_match_first(client: TestClient, gallery: Gallery) -> None:
    # Angelina Jolie is not in the gallery: her best result is another woman, at a
    # similarity that about two of the 21 faces would reach by chance.
    body = post(client, gallery, [gallery.dev / "deepface/img11.jpg"]).json()
    assert body["reliable"] is False
    assert body["verdict"].startswith("No reliable match")
    assert all(m["band"] == "chance" for m in body["matches"])
    assert body["matches"][0]["expected_false_matches"] >= 1
