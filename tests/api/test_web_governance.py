"""The data-protection pages: sources, erase a person, access requests, the audit log.
Every form needs the session's CSRF token; each role sees only its own pages."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from facesearch import FaceSearch
from tests.api.governance_app import found_files, gallery_copy
from tests.api.test_web_forms import login_token
from tests.app_gallery import OBAMA_PROBE, Gallery


@pytest.fixture
def app(gallery: Gallery, tmp_path: Path) -> Iterator[tuple[TestClient, FaceSearch]]:
    with gallery_copy(gallery, tmp_path) as pair:
        yield pair


def browser_for(client: TestClient, key: str, page: str) -> tuple[TestClient, str]:
    """A signed-in browser and its session's CSRF token (read from ``page``)."""
    browser = TestClient(client.app, base_url="https://testserver")
    response = browser.post(
        "/login", data={"csrf_token": login_token(browser), "api_key": key}, follow_redirects=False
    )
    assert response.status_code == 303
    match = re.search(r'name="csrf-token" content="([^"]+)"', browser.get(page).text)
    assert match
    return browser, match.group(1)


SOURCE_FORM = {
    "name": "case-77",
    "lawful_basis": "public_task",
    "condition": "substantial_public_interest",
    "retention": "2y",
    "jurisdictions": "gb, fr",
    "controller": "Example Council",
    "contact": "dpo@example.org",
}


def test_admins_register_and_edit_sources_with_the_csrf_token(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    browser, csrf = browser_for(client, gallery.keys["admin"], "/sources")
    page = browser.get("/sources").text
    assert "legal_claims" in page and "Register a source" in page
    refused = browser.post("/sources", data=SOURCE_FORM)
    assert refused.status_code == 403
    assert "case-77" not in {s.name for s in engine.sources()}
    made = browser.post("/sources", data={**SOURCE_FORM, "csrf_token": csrf})
    assert made.status_code == 201
    row = re.search(r'<tr id="source-case-77">.*?</tr>', made.text, re.S)
    assert row and "public_task" in row.group(0) and "FR, GB" in row.group(0)
    assert "730 days" in row.group(0)
    bad = browser.post(
        "/sources", data={**SOURCE_FORM, "name": "x", "retention": "forever", "csrf_token": csrf}
    )
    assert bad.status_code == 400 and "is not a period" in bad.text

    edit = {**SOURCE_FORM, "retention": "90", "legal_hold": "on"}
    del edit["name"]
    assert browser.post("/sources/case-77", data=edit).status_code == 403
    saved = browser.post("/sources/case-77", data={**edit, "csrf_token": csrf})
    assert saved.status_code == 200
    source = engine.source("case-77")
    assert source.legal_hold and source.retention_days == 90
    missing = browser.post("/sources/nope", data={**edit, "csrf_token": csrf})
    assert missing.status_code == 404 and "not registered" in missing.text

    searcher, _ = browser_for(client, gallery.keys["search"], "/")
    view = searcher.get("/sources")
    assert view.status_code == 200 and "case-77" in view.text
    assert "Register a source" not in view.text and "<details>" not in view.text
    assert searcher.post("/sources", data=SOURCE_FORM).status_code == 403


def test_erase_a_person_upload_review_select_and_see_the_receipt(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, _ = app
    browser, csrf = browser_for(client, gallery.keys["admin"], "/admin/erase")
    photo = (gallery.dev / OBAMA_PROBE).read_bytes()
    files = {"image": ("p.jpg", photo, "image/jpeg")}
    no_token = browser.post("/admin/erase/review", files=files)
    assert no_token.status_code == 403
    review = browser.post("/admin/erase/review", files=files, data={"csrf_token": csrf})
    assert review.status_code == 200
    ids = re.findall(r'name="image_id" value="(\d+)"', review.text)
    assert len(ids) == 1 and "obama.jpg" in review.text
    thumb = re.search(r'src="(/v1/faces/\d+/thumbnail)"', review.text)
    assert thumb and browser.get(thumb.group(1)).status_code == 200

    assert browser.post("/admin/erase", data={"image_id": ids, "reason": "R-1"}).status_code == 403
    # The API with the session cookie needs the CSRF header, like every cookie call.
    api = browser.post("/v1/erasures", json={"image_ids": [int(i) for i in ids]})
    assert api.status_code == 403 and api.json()["error"]["code"] == "csrf_failed"
    assert "obama.jpg" in found_files(client, gallery, gallery.dev / OBAMA_PROBE)
    done = browser.post(
        "/admin/erase", data={"image_id": ids, "reason": "Art. 17 R-1", "csrf_token": csrf}
    )
    assert done.status_code == 200
    assert "Erased 1 image(s)" in done.text and "Art. 17 R-1" in done.text
    assert browser.get(thumb.group(1)).status_code == 404
    assert "obama.jpg" not in found_files(client, gallery, gallery.dev / OBAMA_PROBE)
    none = browser.post("/admin/erase", data={"reason": "x", "csrf_token": csrf})
    assert none.status_code == 400 and "select at least one image" in none.text


def test_the_operator_handles_an_access_request_and_downloads_the_report(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    browser, csrf = browser_for(client, gallery.keys["admin"], "/admin/access-requests")
    photo = (gallery.dev / OBAMA_PROBE).read_bytes()
    files = {"image": ("me.jpg", photo, "image/jpeg")}
    handled = len(list(engine.audit.entries(action="access_request")))
    assert browser.post("/admin/access-requests", files=files).status_code == 403
    page = browser.post("/admin/access-requests", files=files, data={"csrf_token": csrf})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert re.search(r"1 image\(s\) found", page.text)
    assert "archive.example.org/photos/obama.jpg" in page.text
    link = re.search(r'href="data:text/html;base64,([^"]+)"', page.text)
    assert link
    document = base64.b64decode(link.group(1)).decode()
    assert "what this system holds about you" in document and "obama.jpg" in document
    entries = list(engine.audit.entries(action="access_request"))
    assert len(entries) == handled + 1
    entry = entries[-1]
    assert set(entry.details) == {"request_id", "probe_sha256", "results"}
    coffee = (gallery.dev / "skimage/coffee.png").read_bytes()
    no_face = browser.post(
        "/admin/access-requests",
        files={"image": ("c.png", coffee, "image/png")},
        data={"csrf_token": csrf},
    )
    assert no_face.status_code == 422 and "no face found" in no_face.text


def test_auditors_see_the_audit_log_filtered_by_case_and_its_verification(
    app: tuple[TestClient, FaceSearch], gallery: Gallery
) -> None:
    client, engine = app
    from facesearch.domain import Requester

    engine.search(gallery.dev / OBAMA_PROBE, who=Requester("inv-7", "fraud", "CASE-9"))
    browser, _ = browser_for(client, gallery.keys["auditor"], "/audit")
    page = browser.get("/audit", params={"case_ref": "CASE-9"})
    assert page.status_code == 200
    assert "Hash chain intact" in page.text
    rows = re.findall(r"<tr>\s*<td>\d+</td>.*?</tr>", page.text, re.S)
    assert len(rows) == 1 and "inv-7" in rows[0] and "fraud" in rows[0]
    assert browser.get("/admin/erase").status_code == 403
    assert browser.get("/admin/access-requests").status_code == 403
    engine.audit.store.db.execute("UPDATE audit SET purpose = 'edited' WHERE seq = 1")
    assert "AUDIT LOG TAMPERED: entry 1 was edited" in browser.get("/audit").text
    searcher, _ = browser_for(client, gallery.keys["search"], "/")
    assert searcher.get("/audit").status_code == 403
