"""Persons: the faces of sources whose policy declares grouping, grouped (``/v1/persons``);
corrections (name, merge, split, move), search with a person, and erasure review and
access requests started from one."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from facesearch.accounts.roles import Action, Principal
from facesearch.api import schemas
from facesearch.api.auth import allow, rate_limit_search, requester
from facesearch.api.deps import AUTH_ERRORS, MAX_ID, PLAIN_ID, errors, gateway
from facesearch.api.routes_requests import _report_response
from facesearch.domain import Person, SearchResult

router = APIRouter(prefix="/v1", tags=["people"])
PersonId = Annotated[int, PLAIN_ID, PathParam(ge=1, le=MAX_ID, description="Person id.")]
Ids = Annotated[
    list[Annotated[int, Field(ge=1, le=MAX_ID)]], Field(min_length=1, max_length=10_000)
]


class PersonOut(BaseModel):
    id: int
    name: str
    faces: list[int] = Field(description="Face ids (GET /v1/faces/{id}/thumbnail).")
    images: list[int]
    confirmed: list[int] = Field(description="Faces a person placed: grouping keeps them.")
    created_at: str
    updated_at: str


class PersonDetail(PersonOut):
    image_records: list[schemas.ImageOut] = Field(description="Every image, with sources.")


class PersonsPage(BaseModel):
    items: list[PersonOut]


class GroupIn(BaseModel):
    full: bool = Field(False, description="Regroup every face not confirmed by a person.")


class GroupOut(BaseModel):
    sources: list[str] = Field(description="The sources whose policy declares grouping.")
    faces: int
    grouped: int
    new_persons: int
    ungrouped: int
    full: bool


class RenameIn(BaseModel):
    name: str = Field(max_length=200, description="A label people give ('' clears it).")


class MergeIn(BaseModel):
    others: Ids = Field(description="Persons merged into this one.")


class FacesIn(BaseModel):
    faces: Ids


class MoveIn(FacesIn):
    person: int | None = Field(None, ge=1, le=MAX_ID, description="Target (null: a new one).")


class SplitOut(BaseModel):
    kept: PersonOut
    new: PersonOut


class PersonSearchIn(BaseModel):
    top_k: int | None = Field(None, ge=1, le=500)
    threshold: float | None = Field(None, ge=-1, le=1)
    sources: list[str] | None = Field(None, max_length=100)
    purpose: str | None = Field(None, max_length=500)
    case_ref: str | None = Field(None, max_length=200)


class PersonMatchesOut(BaseModel):
    person: int
    notice: str = Field(description=schemas.NOTICE)
    threshold: float
    likely_matches: int
    matches: list[schemas.MatchOut]


def person_out(p: Person) -> PersonOut:
    return PersonOut(
        id=p.id,
        name=p.name,
        faces=list(p.faces),
        images=list(p.images),
        confirmed=list(p.confirmed),
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def matches_out(person: int, result: SearchResult) -> PersonMatchesOut:
    rows = [schemas.match(m, m.rank, None) for m in result.matches]
    return PersonMatchesOut(
        person=person,
        notice=schemas.NOTICE,
        threshold=result.threshold,
        likely_matches=sum(m.is_match for m in rows),
        matches=rows,
    )


@router.get(
    "/persons", response_model=PersonsPage, summary="List persons", responses=errors(*AUTH_ERRORS)
)
async def list_persons(
    request: Request, who: Principal = Depends(allow(Action.VIEW_IMAGES))
) -> PersonsPage:
    """Every person (sources whose policy declares grouping only), by id."""
    gw = gateway(request)
    return PersonsPage(items=[person_out(p) for p in await gw.locked(gw.engine.persons)])


@router.post(
    "/persons/group",
    response_model=GroupOut,
    summary="Group faces into persons",
    responses=errors(*AUTH_ERRORS),
)
async def group(
    request: Request, body: GroupIn, who: Principal = Depends(allow(Action.MANAGE_SOURCES))
) -> dict[str, Any]:
    """Group the faces not yet grouped (ingest does this by itself), or with `full` every
    face not confirmed by a person; audited as `people.group`."""
    gw = gateway(request)
    return await gw.locked(gw.engine.group_people, body.full, requester(who))


@router.get(
    "/persons/{person_id}",
    response_model=PersonDetail,
    summary="One person",
    responses=errors(404, *AUTH_ERRORS),
)
async def get_person(
    request: Request, person_id: PersonId, who: Principal = Depends(allow(Action.VIEW_IMAGES))
) -> PersonDetail:
    """The person with every image of them and its sources."""
    gw = gateway(request)
    person = await gw.locked(gw.engine.person, person_id)
    records = [await run_in_threadpool(gw.image, i) for i in person.images]
    return PersonDetail(
        **person_out(person).model_dump(), image_records=[schemas.image(r) for r in records]
    )


@router.patch(
    "/persons/{person_id}",
    response_model=PersonOut,
    summary="Name a person",
    responses=errors(400, 404, *AUTH_ERRORS),
)
async def rename(
    request: Request,
    person_id: PersonId,
    body: RenameIn,
    who: Principal = Depends(allow(Action.MANAGE_SOURCES)),
) -> PersonOut:
    gw = gateway(request)
    return person_out(
        await gw.locked(gw.engine.rename_person, person_id, body.name, requester(who))
    )


@router.post(
    "/persons/{person_id}/merge",
    response_model=PersonOut,
    summary="Merge persons into this one",
    responses=errors(400, 404, *AUTH_ERRORS),
)
async def merge(
    request: Request,
    person_id: PersonId,
    body: MergeIn,
    who: Principal = Depends(allow(Action.MANAGE_SOURCES)),
) -> PersonOut:
    """Their faces become this person's, confirmed (later grouping keeps them). Refused
    when two of them appear in one image."""
    gw = gateway(request)
    merged = await gw.locked(gw.engine.merge_persons, person_id, body.others, requester(who))
    return person_out(merged)


@router.post(
    "/persons/{person_id}/split",
    response_model=SplitOut,
    summary="Split faces off into a new person",
    responses=errors(400, 404, *AUTH_ERRORS),
)
async def split(
    request: Request,
    person_id: PersonId,
    body: FacesIn,
    who: Principal = Depends(allow(Action.MANAGE_SOURCES)),
) -> SplitOut:
    """Both sides are confirmed: later grouping never joins them again."""
    gw = gateway(request)
    kept, new = await gw.locked(gw.engine.split_person, person_id, body.faces, requester(who))
    return SplitOut(kept=person_out(kept), new=person_out(new))


@router.post(
    "/persons/move",
    response_model=PersonOut,
    summary="Put faces into a person",
    responses=errors(400, 404, *AUTH_ERRORS),
)
async def move(
    request: Request, body: MoveIn, who: Principal = Depends(allow(Action.MANAGE_SOURCES))
) -> PersonOut:
    """Faces of declaring sources into `person` (or a new one), confirmed."""
    gw = gateway(request)
    return person_out(
        await gw.locked(gw.engine.move_faces, body.faces, body.person, requester(who))
    )


@router.post(
    "/persons/{person_id}/search",
    response_model=PersonMatchesOut,
    summary="Search with a person",
    responses=errors(400, 403, 404, 429, *AUTH_ERRORS),
)
async def search_person(
    request: Request,
    person_id: PersonId,
    body: PersonSearchIn,
    who: Principal = Depends(allow(Action.SEARCH)),
) -> PersonMatchesOut:
    """Every face of the person is a probe; each image keeps its best similarity. Needs
    `purpose` and `case_ref` like any search; audited as `search.person`."""
    rate_limit_search(request, who)
    gw = gateway(request)
    asking = replace(
        requester(who),
        purpose=(body.purpose or "").strip() or None,
        case_ref=(body.case_ref or "").strip() or None,
    )
    gw.engine.check_requester(asking)
    result = await gw.locked(
        gw.engine.search_person,
        person_id,
        top_k=body.top_k,
        threshold=body.threshold,
        sources=body.sources,
        who=asking,
    )
    return matches_out(person_id, result)


@router.get(
    "/persons/{person_id}/review",
    response_model=PersonMatchesOut,
    summary="Review a person's images before erasure",
    responses=errors(404, *AUTH_ERRORS),
)
async def review(
    request: Request, person_id: PersonId, who: Principal = Depends(allow(Action.DELETE))
) -> PersonMatchesOut:
    """The person's images and every image above the strict threshold of any of their
    faces (objections included): erase the ones confirmed with `POST /v1/erasures`."""
    gw = gateway(request)
    return matches_out(
        person_id, await gw.locked(gw.engine.review_person, person_id, requester(who))
    )


@router.post(
    "/persons/{person_id}/access-request",
    summary="An access report started from a person",
    responses=errors(404, *AUTH_ERRORS),
)
async def access_request(
    request: Request,
    person_id: PersonId,
    format: Literal["json", "html"] = Query("json", description="json, or html to hand over."),
    who: Principal = Depends(allow(Action.HANDLE_REQUESTS)),
) -> Response:
    """The same report as an access request by photo, from the person's faces."""
    gw = gateway(request)
    report = await gw.locked(gw.engine.access_request_person, person_id, requester(who))
    return _report_response(report, format)
