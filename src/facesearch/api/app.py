"""create_app(engine): the HTTP API over one FaceSearch engine (``facesearch.app`` adds
the web UI to it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from facesearch.accounts.ports import AccountStore
from facesearch.accounts.ratelimit import TokenBuckets
from facesearch.api import errors
from facesearch.api.auth import AuthState
from facesearch.api.gateway import Gateway
from facesearch.api.jobs import IngestJobs
from facesearch.api.middleware import (
    BodyLimitMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
)
from facesearch.api.thumbnails import ThumbnailCache
from facesearch.api.uploads import FORM_ROOM
from facesearch.config import Api
from facesearch.engine import FaceSearch
from facesearch.parts import build_accounts
from facesearch.serving.pool import Models
from facesearch.serving.scheduler import RetentionSchedule

DESCRIPTION = """Search photo collections you lawfully hold by face.

Send an API key as `Authorization: Bearer KEY` (`facesearch keys create`). Every error
is `{"error": {"code", "message", "request_id"}}`, and every response carries
`X-Request-ID`. A match is an investigative lead, not an identification.
"""


def create_app(
    engine: FaceSearch,
    *,
    options: Api | None = None,
    accounts: AccountStore | None = None,
    models: Models | None = None,
    clock: Callable[[], float] | None = None,
    extensions: Sequence[Callable[[FastAPI], None]] = (),
) -> FastAPI:
    """The API app for ``engine``; ``options`` default to the engine's settings (``api``).
    Each of ``extensions`` adds its routes to the app before the error handlers and the
    middleware are installed, so they answer like the API (the web UI is one)."""
    opts = options or engine.settings.api
    store = accounts or build_accounts(engine.settings)
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
        if accounts is None:  # made here (a PostgreSQL store holds connections)
            store.close()

    app = FastAPI(
        title="facesearch",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Swagger UI and ReDoc load from a public CDN into this origin, where the session
        # cookie lives: off unless asked for. /openapi.json is public either way.
        docs_url="/docs" if opts.docs else None,
        redoc_url="/redoc" if opts.docs else None,
    )

    def buckets(rate: float, burst: int) -> TokenBuckets:
        return TokenBuckets(rate, burst, clock) if clock else TokenBuckets(rate, burst)

    limiter = buckets(opts.search_rate_per_minute, opts.search_burst)
    app.state.gateway = gateway
    app.state.auth = AuthState(
        store=store,
        enabled=opts.auth,
        search_limits=limiter,
        ingest_limits=buckets(opts.ingest_rate_per_minute, opts.ingest_burst),
        session_hours=opts.session_hours,
        secure_cookies=opts.secure_cookies,
    )
    app.state.thumbnails = thumbnails
    app.state.retention = schedule
    app.state.ingest_jobs = IngestJobs()

    from facesearch.api import (
        routes_admin,
        routes_audit,
        routes_images,
        routes_jobs,
        routes_people,
        routes_removal,
        routes_requests,
        routes_search,
        routes_sources,
    )

    app.include_router(routes_search.router)
    app.include_router(routes_images.router)
    app.include_router(routes_jobs.router)
    app.include_router(routes_people.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_sources.router)
    app.include_router(routes_removal.router)
    app.include_router(routes_requests.router)
    app.include_router(routes_audit.router)
    app.include_router(routes_admin.health)
    for extend in extensions:
        extend(app)
    errors.install(app)
    # The last added runs first: the request id must exist before anything can fail, and
    # every answer, the body limit's 413 included, gets the security headers.
    app.add_middleware(BodyLimitMiddleware, max_body=engine.limits.max_bytes + FORM_ROOM)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    if opts.trusted_proxies:
        # Only these peers may say who the client is (X-Forwarded-For); anyone else could
        # pick a fresh address per request and escape the sign-in throttle.
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(opts.trusted_proxies))
    return app
