"""HTTP hardening: refused uploads leave nothing on disk and uploads are rate-limited; the
image route serves only the bytes that were ingested; sign-in throttling holds against
password spraying and forged X-Forwarded-For; security headers on every answer; the
server closes connections whose request head is too slow and caps how many it serves."""

from __future__ import annotations

import io
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from facesearch import FaceSearch, Settings
from facesearch.accounts.sqlite import SqliteAccountStore
from facesearch.api.server import server_config
from facesearch.app import create_app
from facesearch.config import Api
from tests.app_gallery import NO_FACE, Gallery, bearer, register

OBAMA = "face_recognition/examples/obama.jpg"
BIDEN = "face_recognition/examples/biden.jpg"


@dataclass
class Home:
    client: TestClient
    keys: dict[str, str]
    engine: FaceSearch
    store: SqliteAccountStore
    uploads: Path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    root = tmp_path_factory.mktemp("hardening") / "home"
    store = SqliteAccountStore(root / "accounts.sqlite")
    keys = {role: store.create_key(role, role)[1] for role in ("ingest", "search")}
    with (
        FaceSearch(Settings(home=root, workers=1)) as engine,
        TestClient(create_app(engine, accounts=store), base_url="https://testserver") as client,
    ):
        register(engine, "case-7")
        yield Home(client, keys, engine, store, root / "uploads")


def upload(
    client: TestClient, key: str, name: str, data: bytes, source: str = "case-7"
) -> httpx.Response:
    return client.post(
        "/v1/images",
        files={"image": (name, io.BytesIO(data), "image/jpeg")},
        data={"source": source},
        headers=bearer(key),
    )


def on_disk(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


# -- item 3: nothing written for a refused upload; uploads are rate-limited -------------
def test_refused_uploads_leave_nothing_in_uploads(home: Home, dev: Path) -> None:
    photo = (dev / OBAMA).read_bytes()
    big = io.BytesIO()
    Image.new("L", (9000, 9000)).save(big, format="PNG")
    refused = [
        ("broken.jpg", photo[: len(photo) // 2], "case-7", 400),  # a cut-off real face photo
        ("notes.jpg", b"meeting notes, not a photo", "case-7", 400),
        ("huge.png", big.getvalue(), "case-7", 413),  # over max_pixels
        ("obama.jpg", photo, "no-such-source", 404),  # a good photo, refused all the same
    ]
    before = on_disk(home.uploads)
    for name, data, source, status in refused:
        response = upload(home.client, home.keys["ingest"], name, data, source)
        assert response.status_code == status, (name, response.text)
        assert response.json()["error"]["message"]
        assert on_disk(home.uploads) == before, f"{name} left a file in uploads/"


def test_an_accepted_upload_is_kept_and_named_by_the_catalog(home: Home, dev: Path) -> None:
    data = (dev / NO_FACE).read_bytes()  # no face: still stored, as the CLI stores it
    response = upload(home.client, home.keys["ingest"], "coffee.png", data)
    assert response.status_code in (200, 201), response.text
    [prov] = response.json()["image"]["provenance"]
    kept = Path(prov["path"])
    assert kept.parent == home.uploads and kept.read_bytes() == data
    assert not [n for n in on_disk(home.uploads) if n.startswith(".partial-")]


def test_uploads_are_rate_limited_per_key(home: Home) -> None:
    options = Api(ingest_burst=2, ingest_rate_per_minute=1, secure_cookies=True)
    app = create_app(home.engine, options=options, accounts=home.store, web=False)
    with TestClient(app, base_url="https://testserver") as client:
        statuses = [
            upload(client, home.keys["ingest"], "x.jpg", b"not a photo").status_code
            for _ in range(3)
        ]
        assert statuses == [400, 400, 429]
        refused = upload(client, home.keys["ingest"], "x.jpg", b"not a photo")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "rate_limited"
        # Another key has a bucket of its own (it may not ingest, but it is not throttled).
        other = upload(client, home.keys["search"], "x.jpg", b"not a photo")
        assert other.status_code == 403


# -- item 4: only the ingested bytes are served ----------------------------------------
@pytest.fixture(scope="module")
def stored(home: Home, dev: Path) -> tuple[int, Path, bytes]:
    data = (dev / BIDEN).read_bytes()
    response = upload(home.client, home.keys["ingest"], "biden.jpg", data)
    assert response.status_code in (200, 201), response.text
    image = response.json()["image"]
    return image["id"], Path(image["provenance"][0]["path"]), data


@contextmanager
def swapped(path: Path, make: Callable[[Path], object]) -> Iterator[None]:
    """Replace the ingested file for the duration (``make(path)`` puts something there)."""
    keep = path.with_name("kept-aside")
    path.rename(keep)
    try:
        make(path)
        yield
    finally:
        path.unlink(missing_ok=True)
        keep.rename(path)


def fetch(home: Home, image_id: int) -> httpx.Response:
    return home.client.get(f"/v1/images/{image_id}/file", headers=bearer(home.keys["search"]))


def test_the_file_is_served_with_nosniff(home: Home, stored: tuple[int, Path, bytes]) -> None:
    image_id, _, data = stored
    response = fetch(home, image_id)
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_same_size_symlink_to_another_file_is_not_followed(
    home: Home, stored: tuple[int, Path, bytes], tmp_path: Path
) -> None:
    image_id, path, data = stored
    key = bearer(home.keys["search"])
    face_id = home.client.get(f"/v1/images/{image_id}", headers=key).json()["faces"][0]["id"]
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"password=hunter2\n".ljust(len(data), b"#"))
    with swapped(path, lambda p: p.symlink_to(secret)):
        response = fetch(home, image_id)
        assert response.status_code == 404, response.content[:40]
        assert b"hunter2" not in response.content
        thumb = home.client.get(f"/v1/faces/{face_id}/thumbnail", headers=key)
        assert thumb.status_code == 404
    assert fetch(home, image_id).content == data


def test_a_symlink_out_of_the_ingested_folder_is_refused_even_to_the_same_bytes(
    home: Home, stored: tuple[int, Path, bytes], tmp_path: Path
) -> None:
    image_id, path, _ = stored
    copy = tmp_path / "elsewhere.jpg"
    shutil.copyfile(path, copy)
    with swapped(path, lambda p: p.symlink_to(copy)):
        assert fetch(home, image_id).status_code == 404


def test_a_same_size_file_with_other_content_is_not_served(
    home: Home, stored: tuple[int, Path, bytes], dev: Path
) -> None:
    image_id, path, data = stored
    other = (dev / OBAMA).read_bytes()
    forged = (other * (len(data) // len(other) + 1))[: len(data)]
    with swapped(path, lambda p: p.write_bytes(forged)):
        response = fetch(home, image_id)
        assert response.status_code == 404
        assert "no longer where it was ingested" in response.json()["error"]["message"]
    assert fetch(home, image_id).content == data


# -- item 7: security headers on every kind of answer -----------------------------------
def assert_hardened(response: httpx.Response) -> None:
    assert response.headers.get("x-content-type-options") == "nosniff", response.request.url
    assert response.headers.get("x-frame-options") == "DENY", response.request.url
    csp = response.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, response.request.url
    assert response.headers.get("referrer-policy") == "no-referrer", response.request.url


def test_every_kind_of_answer_has_the_security_headers(
    client: TestClient, gallery: Gallery
) -> None:
    key = bearer(gallery.keys["admin"])
    first = client.get("/v1/images?limit=1", headers=key).json()["items"][0]["id"]
    answers = {
        "json": client.get("/v1/sources", headers=key),
        "error": client.get("/v1/sources"),
        "not found": client.get("/no/such/page"),
        "static": client.get("/static/app.css"),
        "page": client.get("/login"),
        "image file": client.get(f"/v1/images/{first}/file", headers=key),
        "openapi": client.get("/openapi.json"),
        "too large": client.post(
            "/v1/search", content=b"x", headers={**key, "content-length": str(2**40)}
        ),
    }
    expected = {"json": 200, "error": 401, "not found": 404, "static": 200, "page": 200}
    expected |= {"image file": 200, "openapi": 200, "too large": 413}
    assert {k: r.status_code for k, r in answers.items()} == expected
    for response in answers.values():
        assert_hardened(response)


def test_swagger_ui_is_off_unless_asked_for(client: TestClient, gallery: Gallery) -> None:
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 200  # public: see docs/api.md
    engine = client.app.state.gateway.engine  # type: ignore[attr-defined]
    with TestClient(create_app(engine, options=Api(docs=True), web=False)) as on:
        page = on.get("/docs")
        assert page.status_code == 200 and "swagger" in page.text.lower()
        assert_hardened(page)
        assert "https://cdn.jsdelivr.net" in page.headers["content-security-policy"]


# -- item 6: sign-in throttling --------------------------------------------------------
def login_token(client: httpx.Client | TestClient) -> tuple[str, str]:
    page = client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert page.status_code == 200 and match
    return match.group(1), page.cookies["fs_login_csrf"]


def spray(client: httpx.Client | TestClient, n: int, forwarded: bool = False) -> list[int]:
    """One password tried on ``n`` usernames, optionally each from a 'new' forwarded address."""
    statuses = []
    for i in range(n):
        token, cookie = login_token(client)
        headers = {"Cookie": f"fs_login_csrf={cookie}"}
        if forwarded:
            headers["X-Forwarded-For"] = f"203.0.113.{i + 1}"
        response = client.post(
            "/login",
            data={"csrf_token": token, "username": f"user{i}", "password": "Summer2026!"},
            headers=headers,
            follow_redirects=False,
        )
        statuses.append(response.status_code)
    return statuses


def frozen() -> float:
    """A clock that stands still: no token comes back however slow the machine is."""
    return 1000.0


def test_one_password_over_many_usernames_is_throttled(client: TestClient) -> None:
    engine = client.app.state.gateway.engine  # type: ignore[attr-defined]
    with TestClient(create_app(engine, clock=frozen), base_url="https://testserver") as browser:
        statuses = spray(browser, 15)
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429] * 5


def test_successful_sign_ins_from_one_address_are_not_throttled(client: TestClient) -> None:
    browser = TestClient(client.app, base_url="https://testserver", client=("198.51.100.5", 1))
    for _ in range(12):
        token, _ = login_token(browser)
        response = browser.post(
            "/login",
            data={"csrf_token": token, "username": "ada", "password": "correct horse battery"},
            follow_redirects=False,
        )
        assert response.status_code == 303


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live(gallery: Gallery, **api: object) -> Iterator[str]:
    """The app as `facesearch serve` runs it (server_config), on a loopback port."""
    port = free_port()
    with FaceSearch(gallery.settings(**api)) as engine:
        app = create_app(engine, clock=frozen)
        config = server_config(app, engine.settings.api, "127.0.0.1", port, log_level="warning")
        srv = uvicorn.Server(config)
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not srv.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            srv.should_exit = True
            thread.join(timeout=30)


@pytest.fixture(scope="module")
def server(gallery: Gallery) -> Iterator[str]:
    with live(gallery, header_timeout_seconds=1, max_connections=4) as url:
        yield url


def test_a_forged_x_forwarded_for_does_not_reset_the_throttle(server: str) -> None:
    with httpx.Client(base_url=server) as browser:
        statuses = spray(browser, 12, forwarded=True)
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]


def test_forwarded_addresses_are_believed_from_a_trusted_proxy(gallery: Gallery) -> None:
    with live(gallery, trusted_proxies=["127.0.0.1"]) as url, httpx.Client(base_url=url) as b:
        assert spray(b, 12, forwarded=True) == [401] * 12  # each a different client


# -- item 8: slow request heads and too many connections --------------------------------
def open_partial(url: str) -> socket.socket:
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
    return sock


def test_a_connection_dribbling_its_headers_is_closed(server: str) -> None:
    started = time.monotonic()
    sock = open_partial(server)
    sock.settimeout(0.2)
    closed = False
    with sock:
        while time.monotonic() - started < 8:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                if sock.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:  # reset by the server
                closed = True
                break
    assert closed and time.monotonic() - started < 4
    assert httpx.get(f"{server}/healthz").status_code == 200


def test_connections_beyond_the_cap_are_refused(server: str) -> None:
    idle = [open_partial(server) for _ in range(4)]
    try:
        assert httpx.get(f"{server}/healthz").status_code == 503
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5
    while httpx.get(f"{server}/healthz").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_ids_are_digits_and_listing_an_unknown_source_is_404(
    client: TestClient, gallery: Gallery
) -> None:
    """`1.0`, `1_0` and `+1` are not image ids (pydantic would read them as 1, 10 and 1),
    and a mistyped source is a 404, not an empty page."""
    viewer = bearer(gallery.keys["admin"])
    for bad in ("1.0", "1_0", "+1"):
        for path in (f"/v1/images/{bad}", f"/v1/images/{bad}/file", f"/v1/faces/{bad}/thumbnail"):
            answer = client.get(path, headers=viewer)
            assert answer.status_code == 422, (path, answer.status_code)
            assert "digits" in answer.text
    missing = client.get("/v1/images", params={"source": "no-such-source"}, headers=viewer)
    assert missing.status_code == 404
    assert "not registered" in missing.json()["error"]["message"]
