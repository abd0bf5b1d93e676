from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from facesearch import FaceSearch
from facesearch.app import create_app
from tests.app_gallery import TEST_OUTPUT, Gallery, build_gallery

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = "Debian's chromium is missing: run scripts/install-browser.sh (make test does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def e2e_gallery(
    tmp_path_factory: pytest.TempPathFactory, dev: Path, manifest: list[dict[str, str]]
) -> Gallery:
    return build_gallery(tmp_path_factory.getbasetemp(), dev, manifest)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(engine: FaceSearch) -> Iterator[str]:
    """The real app for ``engine`` under uvicorn on a loopback port, in a thread."""
    port = free_port()
    config = uvicorn.Config(
        create_app(engine), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://localhost:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def server(e2e_gallery: Gallery) -> Iterator[str]:
    """The real app under uvicorn on a loopback port, in a thread of this process."""
    with FaceSearch(e2e_gallery.settings()) as engine, serving(engine) as url:
        yield url


@pytest.fixture
def page(chromium: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    (TEST_OUTPUT / "e2e").mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=LAUNCH_ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        tab = context.new_page()
        yield tab
        context.close()
        browser.close()
