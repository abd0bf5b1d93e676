"""create_app(engine): the HTTP API and the web UI over one FaceSearch engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from facesearch.accounts.ratelimit import TokenBuckets
from facesearch.accounts.store import SqliteAccountStore
from facesearch.api import errors
from facesearch.api.auth import AuthState
from facesearch.api.gateway import Gateway, Models
from facesearch.api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from facesearch.api.retention import RetentionSchedule
from facesearch.api.thumbnails import ThumbnailCache
from facesearch.api.uploads import FORM_ROOM
from facesearch.config import Api
from facesearch.engine import FaceSearch

DESCRIPTION = """Search photo collections you lawfully hold by face.

Send an API key as `Authorization: Bearer KEY` (`facesearch keys create`). Every error
is `{"error": {"code", "message", "request_id"}}`, and every response carries
`X-Request-ID`. A match is an investigative lead, not an identification.
"""


def create_app(
    engine: FaceSearch,
    *,
    options: Api | None = None,
    accounts: SqliteAccountStore | None = None,
    models: Models | None = None,
    clock: Callable[[], float] | None = None,
    web: bool = True,
) -> FastAPI:
    """The app for ``engine``; ``options`` default to the engine's settings (``api``)."""
    opts = options or engine.settings.api
    store = accounts or SqliteAccountStore(Path(engine.home) / "accounts.sqlite")
    gateway = Gateway(engine, opts.inference_workers, models)

    thumbnails = ThumbnailCache(opts.thumbnail_cache_bytes)
    minutes = engine.settings.governance.retention_interval_minutes
    schedule = RetentionSchedule(gateway, thumbnails, minutes * 60.0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        schedule.start()
        yield
        await schedule.stop()
        gateway.close()

    app = FastAPI(
        title="facesearch",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    limiter = (
        TokenBuckets(opts.search_rate_per_minute, opts.search_burst, clock)
        if clock
        else TokenBuckets(opts.search_rate_per_minute, opts.search_burst)
    )
    app.state.gateway = gateway
    app.state.auth = AuthState(
        store=store,
        enabled=opts.auth,
        search_limits=limiter,
        session_hours=opts.session_hours,
        secure_cookies=opts.secure_cookies,
    )
    app.state.thumbnails = thumbnails
    app.state.retention = schedule

    from facesearch.api import (
        routes_admin,
        routes_audit,
        routes_images,
        routes_removal,
        routes_requests,
        routes_search,
        routes_sources,
    )

    app.include_router(routes_search.router)
    app.include_router(routes_images.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_sources.router)
    app.include_router(routes_removal.router)
    app.include_router(routes_requests.router)
    app.include_router(routes_audit.router)
    app.include_router(routes_admin.health)
    if web:
        from facesearch.web.routes import mount

        mount(app)
    errors.install(app)
    # The last added runs first: the request id must exist before anything can fail.
    app.add_middleware(BodyLimitMiddleware, max_body=engine.limits.max_bytes + FORM_ROOM)
    app.add_middleware(RequestIdMiddleware)
    return app
