"""Sources, statistics, who am I, and API keys (admin), plus health and readiness."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from facesearch.accounts.ports import KeyInfo
from facesearch.accounts.roles import ROLE_ACTIONS, Action, Principal
from facesearch.api import cursors, schemas
from facesearch.api.auth import allow, auth_state, principal, requester
from facesearch.api.deps import AUTH_ERRORS, errors, gateway

router = APIRouter(prefix="/v1")
health = APIRouter(tags=["health"])


@router.get(
    "/sources",
    tags=["catalog"],
    response_model=schemas.SourcesPage,
    summary="List sources",
    responses=errors(400, *AUTH_ERRORS),
)
async def list_sources(
    request: Request,
    cursor: str | None = Query(None, max_length=500, description="next_cursor of a page."),
    limit: int = Query(100, ge=1, le=500),
    who: Principal = Depends(allow(Action.LIST_SOURCES)),
) -> schemas.SourcesPage:
    """The registered collections, by name: their counts, lawful basis and retention."""
    gw = gateway(request)
    after = cursors.decode(cursor, "after", str) or ""
    rows = [s for s in await gw.locked(gw.engine.sources) if s.name > after]
    page = rows[:limit]
    return schemas.SourcesPage(
        items=[schemas.source(s) for s in page],
        next_cursor=cursors.encode({"after": page[-1].name}) if len(rows) > limit else None,
    )


@router.get(
    "/stats",
    tags=["catalog"],
    response_model=schemas.StatsOut,
    summary="Counts and index state",
    responses=errors(*AUTH_ERRORS),
)
async def stats(
    request: Request, who: Principal = Depends(allow(Action.STATS))
) -> schemas.StatsOut:
    gw = gateway(request)
    data = await gw.locked(gw.engine.stats)
    data.pop("home", None)  # a server path is no business of API callers
    return schemas.StatsOut(**data)


@router.get("/me", tags=["accounts"], response_model=schemas.MeOut, responses=errors(*AUTH_ERRORS))
async def me(who: Principal = Depends(principal)) -> schemas.MeOut:
    """Who the key or session belongs to, and what its role allows."""
    return schemas.MeOut(
        kind=who.kind,
        id=who.id,
        name=who.name,
        role=who.role.value,
        actions=sorted(a.value for a in ROLE_ACTIONS[who.role]),
    )


@router.get(
    "/keys",
    tags=["accounts"],
    response_model=schemas.KeysPage,
    summary="List API keys",
    responses=errors(*AUTH_ERRORS),
)
async def list_keys(
    request: Request, who: Principal = Depends(allow(Action.MANAGE_KEYS))
) -> schemas.KeysPage:
    keys = await run_in_threadpool(auth_state(request).store.list_keys)
    return schemas.KeysPage(items=[schemas.key(k) for k in keys])


@router.post(
    "/keys",
    tags=["accounts"],
    status_code=201,
    response_model=schemas.KeyCreated,
    summary="Create an API key",
    responses=errors(400, *AUTH_ERRORS),
)
async def create_key(
    request: Request,
    body: schemas.KeyCreate,
    who: Principal = Depends(allow(Action.MANAGE_KEYS)),
) -> schemas.KeyCreated:
    """The key is in this answer only: it is stored as a salted hash."""
    info, full = await new_key(request, who, body.name, body.role)
    return schemas.KeyCreated(key=full, info=schemas.key(info))


@router.delete(
    "/keys/{key_id}",
    tags=["accounts"],
    response_model=schemas.KeyOut,
    summary="Revoke an API key",
    responses=errors(404, *AUTH_ERRORS),
)
async def revoke_key(
    request: Request,
    key_id: Annotated[str, PathParam(max_length=64)],
    who: Principal = Depends(allow(Action.MANAGE_KEYS)),
) -> schemas.KeyOut:
    """The key stops working at once, and so do web sessions opened with it."""
    return schemas.key(await revoked_key(request, who, key_id))


async def new_key(request: Request, who: Principal, name: str, role: str) -> tuple[KeyInfo, str]:
    """A key made through the engine, which records it with who made it (never the key)."""
    gw = gateway(request)
    store = auth_state(request).store
    return await gw.locked(gw.engine.create_key, store, name, role, requester(who))


async def revoked_key(request: Request, who: Principal, key_id: str) -> KeyInfo:
    """A key revoked through the engine, which records it with who revoked it."""
    gw = gateway(request)
    store = auth_state(request).store
    return await gw.locked(gw.engine.revoke_key, store, key_id, requester(who))


@health.get("/healthz", response_model=schemas.Health, summary="Liveness")
async def healthz() -> schemas.Health:
    """The process answers (no model or store is touched)."""
    return schemas.Health(status="ok")


@health.get(
    "/readyz",
    response_model=schemas.Ready,
    summary="Readiness",
    responses={503: {"model": schemas.ErrorOut, "description": "Not ready."}},
)
async def readyz(request: Request) -> schemas.Ready | JSONResponse:
    """The catalog answers and the index agrees with it (or is being caught up with what
    another process, such as a command-line ingest, is writing into the same home)."""
    gw = gateway(request)
    data = await gw.locked(gw.engine.stats)
    if not data["index"]["consistent"] and not gw.engine.behind:
        from facesearch.api.errors import envelope

        return envelope(request, 503, "not_ready", "the index is out of step with the catalog")
    return schemas.Ready(status="ready", faces=data["faces"])
