"""Sources with their lawful basis: register (admin), read, change (admin), the fixed lists."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam

from facesearch.accounts.roles import Action, Principal
from facesearch.api import schemas
from facesearch.api import schemas_governance as gov
from facesearch.api.auth import allow, requester
from facesearch.api.deps import AUTH_ERRORS, errors, gateway
from facesearch.domain import Source
from facesearch.errors import InvalidInput
from facesearch.governance.policy import ART6_BASES, ART9_CONDITIONS

router = APIRouter(prefix="/v1", tags=["sources"])
Name = Annotated[str, PathParam(pattern=gov.SOURCE_NAME, description="Source name.")]


@router.get(
    "/lawful-bases",
    response_model=gov.LawfulBasesOut,
    summary="The lawful bases and conditions",
    responses=errors(*AUTH_ERRORS),
)
async def lawful_bases(
    who: Principal = Depends(allow(Action.LIST_SOURCES)),
) -> gov.LawfulBasesOut:
    """The fixed lists a source's `lawful_basis` and `special_category_condition` come from."""
    return gov.LawfulBasesOut(
        lawful_bases=[gov.Choice(code=k, label=v) for k, v in ART6_BASES.items()],
        special_category_conditions=[
            gov.Choice(code=k, label=v) for k, v in ART9_CONDITIONS.items()
        ],
    )


@router.post(
    "/sources",
    status_code=201,
    response_model=schemas.SourceOut,
    summary="Register a source",
    responses=errors(400, *AUTH_ERRORS),
)
async def create_source(
    request: Request,
    body: gov.SourceCreate,
    who: Principal = Depends(allow(Action.MANAGE_SOURCES)),
) -> schemas.SourceOut:
    """A collection, with its lawful basis, condition and retention period (audited)."""
    gw = gateway(request)
    fields = body.model_dump()
    fields["jurisdictions"] = tuple(sorted({j.upper() for j in body.jurisdictions}))
    await gw.locked(gw.engine.add_source, Source(**fields), requester(who))
    return schemas.source(await gw.locked(gw.engine.source, body.name))


@router.get(
    "/sources/{name}",
    response_model=schemas.SourceOut,
    summary="One source",
    responses=errors(404, *AUTH_ERRORS),
)
async def get_source(
    request: Request, name: Name, who: Principal = Depends(allow(Action.LIST_SOURCES))
) -> schemas.SourceOut:
    gw = gateway(request)
    return schemas.source(await gw.locked(gw.engine.source, name))


@router.patch(
    "/sources/{name}",
    response_model=schemas.SourceOut,
    summary="Change a source",
    responses=errors(400, 404, *AUTH_ERRORS),
)
async def update_source(
    request: Request,
    name: Name,
    body: gov.SourceUpdate,
    who: Principal = Depends(allow(Action.MANAGE_SOURCES)),
) -> schemas.SourceOut:
    """Legal hold, retention (its images' expiry dates follow), basis, contacts (audited)."""
    changes = body.changes()
    if not changes:
        raise InvalidInput("nothing to change: send at least one field")
    gw = gateway(request)
    await gw.locked(gw.engine.update_source, name, requester(who), **changes)
    return schemas.source(await gw.locked(gw.engine.source, name))
