"""Access requests without a photo, by where the photos were published: the API
(POST /v1/access-requests/by-url) and the web page's "by where it was published" form.

The gallery's newsroom photos were published at https://archive.example.org/stories/<stem>
(two of them share the stem img1), their files at .../photos/<name>.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facesearch import FaceSearch
from tests.api.governance_app import gallery_copy
from tests.api.test_web_governance import browser_for
from tests.app_gallery import NEWSROOM, OBAMA_PROBE, Gallery, bearer

BY_URL = "/v1/access-requests/by-url"
STORIES = "https://archive.example.org/stories"


@pytest.fixture
def app(gallery: Gallery, tmp_path: Path) -> Iterator[tuple[TestClient, FaceSearch]]:
    with gallery_copy(gallery, tmp_path) as pair:
        yield pair


def newsroom_ids(engine: FaceSearch) -> dict[str, int]:
    """Image id of each newsroom file, by its path relative to the photo set."""
    images = engine.list_images(limit=100, source="newsroom")
    return {next(r for r in NEWSROOM if i.path.endswith(r)): i.id for i in images}


def test_an_access_request_by_url_answers_with_the_report_and_keeps_only_the_audit_entry(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    admin = bearer(gallery.keys["admin"])
    ids = newsroom_ids(engine)
    before = {p: p.stat().st_size for p in engine.home.rglob("*") if p.is_file()}
    audit = len(list(engine.audit.entries(action="access_request")))

    page = client.post(BY_URL, json={"url": f"{STORIES}/obama"}, headers=admin)
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    report = page.json()
    assert report["matched_by"] == "url-exact" and report["url"] == f"{STORIES}/obama"
    [image] = report["images"]
    assert image["image_id"] == ids["face_recognition/examples/obama.jpg"]
    assert image["similarity"] is None and image["face_box"] is None
    assert image["faces_stored"] == 1
    [copy] = image["copies"]
    assert copy["page_url"] == f"{STORIES}/obama" and copy["source"] == "newsroom"
    assert copy["lawful_basis"].startswith("Art. 6(1)(f)") and copy["kept_until"]
    assert any("Art. 17" in r for r in report["your_rights"])

    # The whole section, written another way; a string prefix that stops mid-segment
    # finds nothing.
    section = client.post(
        BY_URL,
        json={"url": "HTTP://Archive.Example.org/stories/", "match": "prefix"},
        headers=admin,
    ).json()
    assert section["matched_by"] == "url-prefix"
    assert {i["image_id"] for i in section["images"]} == set(ids.values())
    partial = client.post(
        BY_URL, json={"url": "https://archive.example.org/stor", "match": "prefix"}, headers=admin
    )
    assert partial.status_code == 200 and partial.json()["images_found"] == 0
    # Two photos share the page .../stories/img1.
    shared = client.post(BY_URL, json={"url": f"{STORIES}/img1"}, headers=admin).json()
    assert shared["images_found"] == 2

    entries = list(engine.audit.entries(action="access_request"))[audit:]
    assert [e.details["match"] for e in entries] == [
        "url-exact",
        "url-prefix",
        "url-prefix",
        "url-exact",
    ]
    first = entries[0].details
    assert set(first) == {"request_id", "match", "url_hash", "results"}
    assert first["request_id"] == report["request_id"] and first["results"] == 1
    assert "archive.example.org" not in repr([e.as_dict() for e in entries])
    # No new file in the home: the request itself is kept nowhere.
    after = {p for p in engine.home.rglob("*") if p.is_file()}
    assert after - set(before) <= {p for p in after if p.name.endswith(("-wal", "-shm"))}


def test_the_report_by_url_comes_as_a_self_contained_html_document(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, _ = app
    response = client.post(
        f"{BY_URL}?format=html",
        json={"url": f"{STORIES}/biden"},
        headers=bearer(gallery.keys["admin"]),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "attachment" in response.headers["content-disposition"]
    page = response.text
    assert f"1 image(s) published at {STORIES}/biden" in page and "biden.jpg" in page
    for tag in ("<script", "<img", "<link", "src="):
        assert tag not in page


def test_images_withheld_by_an_objection_are_still_reported(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    engine.suppress((gallery.dev / OBAMA_PROBE).read_bytes(), "OBJ-1")
    report = client.post(
        BY_URL,
        json={"url": "https://archive.example.org/photos/obama.jpg"},
        headers=bearer(gallery.keys["admin"]),
    ).json()
    assert report["images_found"] == 1
    assert (
        report["images"][0]["image_id"]
        == newsroom_ids(engine)["face_recognition/examples/obama.jpg"]
    )


def test_bad_urls_and_other_roles_are_refused_and_leave_no_entry(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    admin = bearer(gallery.keys["admin"])
    before = len(list(engine.audit.entries(action="access_request")))
    for body in (
        {"url": "ftp://archive.example.org/stories/obama"},
        {"url": "javascript:alert(1)"},
        {"url": "archive.example.org/stories"},
        {"url": "https://archive.example.org/?story=obama", "match": "prefix"},
        {"url": "https://archive.example.org/a b"},
    ):
        bad = client.post(BY_URL, json=body, headers=admin)
        assert bad.status_code == 400, body
        error = bad.json()["error"]
        assert error["code"] == "invalid_input" and "\n" not in error["message"]
    for body in ({"url": f"{STORIES}/obama", "match": "fuzzy"}, {"match": "exact"}, {"url": ""}):
        assert client.post(BY_URL, json=body, headers=admin).status_code == 422, body
    ok = {"url": f"{STORIES}/obama"}
    for role in ("search", "ingest", "auditor"):
        refused = client.post(BY_URL, json=ok, headers=bearer(gallery.keys[role]))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert client.post(BY_URL, json=ok).status_code == 401
    assert client.post(BY_URL, json=ok, headers=bearer(gallery.keys["revoked"])).status_code == 401
    assert len(list(engine.audit.entries(action="access_request"))) == before


def test_the_operator_asks_by_where_it_was_published_on_the_access_page(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    browser, csrf = browser_for(client, gallery.keys["admin"], "/admin/access-requests")
    page = browser.get("/admin/access-requests").text
    assert "By where it was published" in page and 'action="/admin/access-requests/by-url"' in page
    handled = len(list(engine.audit.entries(action="access_request")))
    form = {"url": f"{STORIES}/", "match": "prefix"}
    assert browser.post("/admin/access-requests/by-url", data=form).status_code == 403
    shown = browser.post("/admin/access-requests/by-url", data={**form, "csrf_token": csrf})
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    assert re.search(
        r"6 image\(s\) published under https://archive.example.org/stories\.", shown.text
    )
    assert "archive.example.org/photos/obama.jpg" in shown.text
    link = re.search(r'href="data:text/html;base64,([^"]+)"', shown.text)
    assert link
    document = base64.b64decode(link.group(1)).decode()
    assert "what this system holds about you" in document and "lin-manuel-miranda" in document
    assert len(list(engine.audit.entries(action="access_request"))) == handled + 1
    bad = browser.post(
        "/admin/access-requests/by-url",
        data={"url": "ftp://archive.example.org/", "match": "exact", "csrf_token": csrf},
    )
    assert bad.status_code == 400 and "is not an http(s) URL" in bad.text
    searcher, _ = browser_for(client, gallery.keys["search"], "/")
    refused = searcher.post("/admin/access-requests/by-url", data=form)
    assert refused.status_code == 403
    assert len(list(engine.audit.entries(action="access_request"))) == handled + 1
