"""create_app(engine): the HTTP API and the web UI in one app, served by one process.

The API (``facesearch.api``) knows nothing of the web UI; the web UI (``facesearch.web``)
uses the API's shared pieces (auth, the gateway, errors). This module puts them together,
so that imports run one way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from facesearch.api.app import create_app as create_api
from facesearch.engine import FaceSearch
from facesearch.web.routes import mount


def create_app(
    engine: FaceSearch,
    *,
    web: bool = True,
    clock: Callable[[], float] | None = None,
    **options: Any,
) -> FastAPI:
    """The API for ``engine`` (``options``: see ``facesearch.api.app.create_app``) with the
    web UI's pages mounted on it unless ``web`` is False."""

    def pages(app: FastAPI) -> None:
        mount(app, clock or time.monotonic)

    return create_api(engine, clock=clock, extensions=[pages] if web else [], **options)
