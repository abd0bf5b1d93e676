"""The web UI's sign-in, session cookie and CSRF protection on every form."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.app_gallery import OBAMA_PROBE, PURPOSE, Gallery


def login_token(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def sign_in(client: TestClient, **fields: str) -> str:
    """Signs in; returns the session's CSRF token from the page's meta tag."""
    response = client.post(
        "/login", data={"csrf_token": login_token(client), **fields}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    page = client.get("/")
    match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert match
    return match.group(1)


def fresh(client: TestClient) -> TestClient:
    return TestClient(client.app, base_url="https://testserver")


def test_pages_need_a_session(client: TestClient) -> None:
    for path in ("/", "/sources", "/stats", "/admin/keys", "/images/1"):
        response = fresh(client).get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/login"


def test_sign_in_with_a_password_sets_a_hardened_cookie(
    client: TestClient, gallery: Gallery
) -> None:
    browser = fresh(client)
    response = browser.post(
        "/login",
        data={
            "csrf_token": login_token(browser),
            "username": "ada",
            "password": "correct horse battery",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "fs_session=" in cookie
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    page = browser.get("/")
    assert page.status_code == 200 and "ada (search)" in page.text
    assert "investigative lead, not an identification" in page.text
    assert browser.get("/admin/keys").status_code == 403  # a search user is no admin


def test_wrong_password_and_missing_login_token_are_refused(
    client: TestClient, gallery: Gallery
) -> None:
    browser = fresh(client)
    wrong = browser.post(
        "/login",
        data={"csrf_token": login_token(browser), "username": "ada", "password": "nope"},
    )
    assert wrong.status_code == 401 and "fs_session" not in wrong.headers.get("set-cookie", "")
    forged = fresh(client).post("/login", data={"api_key": gallery.keys["admin"]})
    assert forged.status_code == 403


def test_forms_without_the_csrf_token_change_nothing(client: TestClient, gallery: Gallery) -> None:
    browser = fresh(client)
    csrf = sign_in(browser, api_key=gallery.keys["admin"])
    before = browser.get("/v1/keys").json()["items"]
    refused = browser.post("/admin/keys", data={"name": "sneaky", "role": "admin"})
    assert refused.status_code == 403
    wrong = browser.post(
        "/admin/keys", data={"name": "sneaky", "role": "admin", "csrf_token": "x" * 43}
    )
    assert wrong.status_code == 403
    assert browser.get("/v1/keys").json()["items"] == before
    made = browser.post("/admin/keys", data={"name": "ok", "role": "search", "csrf_token": csrf})
    assert made.status_code == 201
    shown = re.search(r'<code id="new-key">(fsk_[^<]+)</code>', made.text)
    assert shown
    key_id = shown.group(1).split("_")[1]
    no_token = browser.post(f"/admin/keys/{key_id}/revoke")
    assert no_token.status_code == 403
    revoked = browser.post(
        f"/admin/keys/{key_id}/revoke", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert revoked.status_code == 303
    assert browser.post("/logout").status_code == 403  # sign-out is a form too
    assert (
        browser.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code
        == 303
    )
    assert browser.get("/v1/me").status_code == 401


def test_api_calls_with_the_session_cookie_need_the_csrf_header(
    client: TestClient, gallery: Gallery
) -> None:
    browser = fresh(client)
    csrf = sign_in(browser, username="ada", password="correct horse battery")
    photo = (gallery.dev / OBAMA_PROBE).read_bytes()
    refused = browser.post(
        "/v1/search", files={"image": ("p.jpg", photo, "image/jpeg")}, data=PURPOSE
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    allowed = browser.post(
        "/v1/search",
        files={"image": ("p.jpg", photo, "image/jpeg")},
        data=PURPOSE,
        headers={"X-CSRF-Token": csrf},
    )
    assert allowed.status_code == 200
    assert browser.get("/v1/me").json()["name"] == "ada"  # reads need no token


def test_a_revoked_key_ends_its_web_sessions(client: TestClient, gallery: Gallery) -> None:
    admin = {"Authorization": f"Bearer {gallery.keys['admin']}"}
    made = client.post("/v1/keys", json={"name": "temp", "role": "auditor"}, headers=admin).json()
    browser = fresh(client)
    sign_in_page = browser.post(
        "/login",
        data={"csrf_token": login_token(browser), "api_key": made["key"]},
        follow_redirects=False,
    )
    assert sign_in_page.status_code == 303
    assert browser.get("/stats").status_code == 200
    client.delete(f"/v1/keys/{made['info']['key_id']}", headers=admin)
    assert browser.get("/stats", follow_redirects=False).status_code == 303


def test_sources_statistics_and_image_pages_render(client: TestClient, gallery: Gallery) -> None:
    browser = fresh(client)
    sign_in(browser, api_key=gallery.keys["admin"])
    sources = browser.get("/sources")
    assert sources.status_code == 200
    assert "newsroom" in sources.text and "legitimate_interests" in sources.text
    stats = browser.get("/stats")
    assert stats.status_code == 200 and "consistent with the catalog" in stats.text
    first = browser.get("/v1/images", params={"limit": 1}).json()["items"][0]
    page = browser.get(f"/images/{first['id']}")
    assert page.status_code == 200
    assert first["provenance"][0]["path"] in page.text
    assert f'src="/v1/images/{first["id"]}/file"' in page.text
    assert browser.get("/images/999999").status_code == 404
    keys = browser.get("/admin/keys")
    assert keys.status_code == 200 and "test search" in keys.text
    assert gallery.keys["search"] not in keys.text  # keys are never shown again


def test_password_guessing_is_throttled(client: TestClient) -> None:
    # From an address of its own: the other tests' failed sign-ins count against theirs.
    browser = TestClient(client.app, base_url="https://testserver", client=("192.0.2.7", 50000))
    statuses = []
    for n in range(12):
        response = browser.post(
            "/login",
            data={"csrf_token": login_token(browser), "username": "mallory", "password": f"g{n}"},
        )
        statuses.append(response.status_code)
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    assert int(response.headers["retry-after"]) >= 1
    assert "Too many sign-in attempts" in response.text
