"""Every endpoint refuses callers without a key, with a revoked key or with the wrong role;
uploads over the limits are refused before decoding; bad files get a clear 4xx."""

from __future__ import annotations

import io
import re
import sqlite3
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facesearch import FaceSearch, Settings
from facesearch.accounts.roles import ROLE_ACTIONS, Action, Role
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.app import create_app
from tests.app_gallery import OBAMA_PROBE, PURPOSE, Gallery, bearer

# Every /v1 endpoint, with the action it needs (None: any signed-in caller).
ENDPOINTS: list[tuple[str, str, Action | None]] = [
    ("POST", "/v1/search", Action.SEARCH),
    ("POST", "/v1/images", Action.INGEST),
    ("GET", "/v1/images", Action.VIEW_IMAGES),
    ("GET", "/v1/images/1", Action.VIEW_IMAGES),
    ("GET", "/v1/images/1/file", Action.VIEW_IMAGES),
    ("GET", "/v1/images/1/thumbnail", Action.VIEW_IMAGES),
    ("GET", "/v1/faces/1/thumbnail", Action.VIEW_IMAGES),
    ("GET", "/v1/sources", Action.LIST_SOURCES),
    ("GET", "/v1/stats", Action.STATS),
    ("GET", "/v1/me", None),
    ("GET", "/v1/keys", Action.MANAGE_KEYS),
    ("POST", "/v1/keys", Action.MANAGE_KEYS),
    ("DELETE", "/v1/keys/abc", Action.MANAGE_KEYS),
    ("GET", "/v1/lawful-bases", Action.LIST_SOURCES),
    ("POST", "/v1/sources", Action.MANAGE_SOURCES),
    ("GET", "/v1/sources/abc", Action.LIST_SOURCES),
    ("PATCH", "/v1/sources/abc", Action.MANAGE_SOURCES),
    ("POST", "/v1/retention/run", Action.DELETE),
    ("POST", "/v1/erasures", Action.DELETE),
    ("POST", "/v1/erasures/review", Action.DELETE),
    ("POST", "/v1/access-requests", Action.HANDLE_REQUESTS),
    ("POST", "/v1/access-requests/by-url", Action.HANDLE_REQUESTS),
    ("POST", "/v1/suppressions", Action.HANDLE_REQUESTS),
    ("GET", "/v1/suppressions", Action.HANDLE_REQUESTS),
    ("DELETE", "/v1/suppressions/1", Action.HANDLE_REQUESTS),
    ("GET", "/v1/audit", Action.AUDIT),
    ("GET", "/v1/audit/verify", Action.AUDIT),
    ("GET", "/v1/report", Action.AUDIT),
    ("GET", "/v1/images/1/video", Action.VIEW_IMAGES),
    ("POST", "/v1/ingest-jobs", Action.INGEST),
    ("GET", "/v1/ingest-jobs/abc", Action.INGEST),
    ("GET", "/v1/sources/abc/failures", Action.LIST_SOURCES),
    ("GET", "/v1/persons", Action.VIEW_IMAGES),
    ("POST", "/v1/persons/group", Action.MANAGE_SOURCES),
    ("GET", "/v1/persons/1", Action.VIEW_IMAGES),
    ("PATCH", "/v1/persons/1", Action.MANAGE_SOURCES),
    ("POST", "/v1/persons/1/merge", Action.MANAGE_SOURCES),
    ("POST", "/v1/persons/1/split", Action.MANAGE_SOURCES),
    ("POST", "/v1/persons/move", Action.MANAGE_SOURCES),
    ("POST", "/v1/persons/1/search", Action.SEARCH),
    ("GET", "/v1/persons/1/review", Action.DELETE),
    ("POST", "/v1/persons/1/access-request", Action.HANDLE_REQUESTS),
]


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    return client.request(method, path, headers=headers).status_code


def test_the_endpoint_table_covers_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    documented = {
        (method.upper(), re.sub(r"\{[a-z_]+\}", "ID", path))
        for path, ops in paths.items()
        if path.startswith("/v1/")
        for method in ops
    }
    table = {(m, re.sub(r"/(1|abc)(?=/|$)", "/ID", p)) for m, p, _ in ENDPOINTS}
    assert documented == table


@pytest.mark.parametrize(("method", "path", "action"), ENDPOINTS)
def test_no_key_and_revoked_key_get_401(
    client: TestClient, gallery: Gallery, method: str, path: str, action: Action | None
) -> None:
    for headers in ({}, bearer(gallery.keys["revoked"]), bearer("fsk_nope_nope")):
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path, headers)
        error = response.json()["error"]
        assert error["code"] == "unauthorized" and error["request_id"]
        assert response.headers["www-authenticate"] == "Bearer"
    basic = client.request(method, path, headers={"Authorization": "Basic YWRhOmFkYQ=="})
    assert basic.status_code == 401


@pytest.mark.parametrize(("method", "path", "action"), ENDPOINTS)
def test_a_role_without_the_action_gets_403(
    client: TestClient, gallery: Gallery, method: str, path: str, action: Action | None
) -> None:
    for role in Role:
        if action is None or action in ROLE_ACTIONS[role]:
            continue
        response = client.request(method, path, headers=bearer(gallery.keys[role.value]))
        assert response.status_code == 403, (path, role)
        assert response.json()["error"]["code"] == "forbidden"


def test_roles_are_fixed_sets() -> None:
    assert ROLE_ACTIONS[Role.ADMIN] == frozenset(Action)
    assert Action.SEARCH not in ROLE_ACTIONS[Role.AUDITOR]
    assert Action.INGEST not in ROLE_ACTIONS[Role.SEARCH]
    assert Action.MANAGE_KEYS not in ROLE_ACTIONS[Role.INGEST]
    assert ROLE_ACTIONS[Role.AUDITOR] >= {Action.STATS, Action.AUDIT}
    # Removing data and handling data subjects' requests are the admin's alone.
    for role in (Role.SEARCH, Role.INGEST, Role.AUDITOR):
        assert not ROLE_ACTIONS[role] & {
            Action.DELETE,
            Action.HANDLE_REQUESTS,
            Action.MANAGE_SOURCES,
        }
    assert Action.AUDIT not in ROLE_ACTIONS[Role.SEARCH] | ROLE_ACTIONS[Role.INGEST]


def test_the_auditor_reads_the_log_and_the_report_but_cannot_erase(
    client: TestClient, gallery: Gallery
) -> None:
    auditor = bearer(gallery.keys["auditor"])
    log = client.get("/v1/audit", headers=auditor)
    assert log.status_code == 200 and log.json()["items"]
    assert client.get("/v1/audit/verify", headers=auditor).json()["ok"] is True
    assert client.get("/v1/report", headers=auditor).json()["sources"]
    erase = client.post("/v1/erasures", json={"image_ids": [1]}, headers=auditor)
    assert erase.status_code == 403
    assert client.get("/v1/images/1", headers=bearer(gallery.keys["search"])).status_code == 200
    search = bearer(gallery.keys["search"])
    for method, path in (("GET", "/v1/audit"), ("POST", "/v1/erasures")):
        assert client.request(method, path, headers=search).status_code == 403
    photo = (gallery.dev / OBAMA_PROBE).read_bytes()
    dsar = client.post(
        "/v1/access-requests", files={"image": ("p.jpg", photo, "image/jpeg")}, headers=search
    )
    assert dsar.status_code == 403 and dsar.json()["error"]["code"] == "forbidden"


def test_keys_and_passwords_are_stored_only_as_hashes(gallery: Gallery) -> None:
    raw = b""
    for name in ("accounts.sqlite", "accounts.sqlite-wal"):
        path = gallery.home / name
        raw += path.read_bytes() if path.exists() else b""
    for key in gallery.keys.values():
        assert key.encode() not in raw
        assert key.split("_", 2)[2].encode() not in raw
    db = sqlite3.connect(gallery.home / "accounts.sqlite")
    [(hashed,)] = db.execute("SELECT password_hash FROM users WHERE username = 'ada'")
    db.close()
    assert hashed.startswith("$argon2id$") and "correct horse" not in hashed


def test_admin_manages_keys_over_the_api(client: TestClient, gallery: Gallery) -> None:
    admin = bearer(gallery.keys["admin"])
    made = client.post("/v1/keys", json={"name": "robot", "role": "search"}, headers=admin)
    assert made.status_code == 201
    new = made.json()
    assert client.get("/v1/me", headers=bearer(new["key"])).json()["role"] == "search"
    listed = client.get("/v1/keys", headers=admin).json()["items"]
    assert all("key" not in k for k in listed)
    assert new["info"]["key_id"] in {k["key_id"] for k in listed}
    gone = client.delete(f"/v1/keys/{new['info']['key_id']}", headers=admin)
    assert gone.status_code == 200 and gone.json()["active"] is False
    assert client.get("/v1/me", headers=bearer(new["key"])).status_code == 401
    bad = client.post("/v1/keys", json={"name": "x", "role": "overlord"}, headers=admin)
    assert bad.status_code == 400 and "unknown role" in bad.json()["error"]["message"]
    admin_id = client.get("/v1/me", headers=admin).json()["id"]
    engine = client.app.state.gateway.engine  # type: ignore[attr-defined]
    logged = [
        (e.action, e.actor)
        for e in engine.audit.entries()
        if e.details.get("key_id") == new["info"]["key_id"]
    ]
    assert logged == [("key.create", f"key:{admin_id}"), ("key.revoke", f"key:{admin_id}")]
    assert all(new["key"] not in str(e.details) for e in engine.audit.entries())


# -- uploads ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    """An app with small limits and a tight search rate on a fake clock."""
    home = tmp_path_factory.mktemp("limits")
    now = [1000.0]
    settings = Settings(
        home=home,
        workers=1,
        limits={"max_bytes": 300_000, "max_pixels": 4_000_000},
        api={"search_rate_per_minute": 6, "search_burst": 1000},
    )
    store = SqliteAccountStore(home / "accounts.sqlite")
    _, key = store.create_key("limits", "admin")
    with (
        FaceSearch(settings) as engine,
        TestClient(
            create_app(engine, accounts=store, clock=lambda: now[0]),
            base_url="https://testserver",
        ) as client,
    ):
        client.app.state.now = now  # type: ignore[attr-defined]
        yield client, key


def post_image(client: TestClient, key: str, data: bytes, ctype: str = "image/jpeg") -> dict:
    response = client.post(
        "/v1/search", files={"image": ("x", data, ctype)}, data=PURPOSE, headers=bearer(key)
    )
    return {"status": response.status_code, **response.json()["error"]}


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def test_uploads_over_the_limits_get_413(small: tuple[TestClient, str]) -> None:
    client, key = small
    big = post_image(client, key, b"\xff" * 400_000)
    assert big["status"] == 413 and "over the limit" in big["message"]
    bomb = png(5000, 5000)  # 25 Mpx of black compresses to a few kB
    assert len(bomb) < 300_000
    refused = post_image(client, key, bomb, "image/png")
    assert refused["status"] == 413 and "pixels" in refused["message"]


def test_a_body_without_content_length_is_cut_off_at_the_limit(
    small: tuple[TestClient, str],
) -> None:
    client, key = small

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 10_000

    response = client.post(
        "/v1/search",
        content=chunks(),
        headers={**bearer(key), "Content-Type": "multipart/form-data; boundary=zz"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize(
    ("data", "ctype", "status", "words"),
    [
        (b"%PDF-1.4 not an image", "application/pdf", 415, "send an image"),
        (b"just some text, not pixels", "image/jpeg", 400, "not a recognised image"),
        (b"", "image/jpeg", 400, "empty"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", 400, "not a recognised"),
    ],
)
def test_bad_files_get_a_clear_4xx(
    small: tuple[TestClient, str], data: bytes, ctype: str, status: int, words: str
) -> None:
    client, key = small
    error = post_image(client, key, data, ctype)
    assert error["status"] == status and words in error["message"]


def test_a_truncated_photo_gets_a_clear_400(small: tuple[TestClient, str], dev) -> None:  # type: ignore[no-untyped-def]
    client, key = small
    whole = (dev / OBAMA_PROBE).read_bytes()
    error = post_image(client, key, whole[: len(whole) // 3])
    assert error["status"] == 400 and "cannot decode" in error["message"]


def test_searches_over_the_rate_get_429_with_retry_after(small: tuple[TestClient, str]) -> None:
    client, key = small
    now = client.app.state.now  # type: ignore[attr-defined]
    buckets = client.app.state.auth.search_limits  # type: ignore[attr-defined]
    buckets.burst = 2.0
    now[0] += 10_000  # a fresh minute: the bucket is full (2 searches at once)
    statuses = [post_image(client, key, b"x")["status"] for _ in range(3)]
    assert statuses == [400, 400, 429]
    response = client.post(
        "/v1/search", files={"image": ("x", b"x")}, data=PURPOSE, headers=bearer(key)
    )
    assert response.status_code == 429 and int(response.headers["retry-after"]) == 10
    now[0] += 10  # 6 per minute: one search every 10 s
    assert post_image(client, key, b"x")["status"] == 400
