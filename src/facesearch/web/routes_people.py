"""People on the web: the person browser (sources that declare grouping only), a
person's page (faces, every image with its sources, corrections), search with a person,
and the erasure review and access report started from one."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from facesearch.accounts.roles import Action
from facesearch.api.auth import requester
from facesearch.api.deps import MAX_ID, PLAIN_ID, gateway
from facesearch.domain import SearchResult
from facesearch.errors import FacesearchError, InvalidInput
from facesearch.web.pages import Page
from facesearch.web.routes_governance import CSRF_MESSAGE, _access_report_page

router = APIRouter(include_in_schema=False)
PersonId = Annotated[int, PLAIN_ID, PathParam(ge=1, le=MAX_ID)]


@router.get("/people", response_class=HTMLResponse)
async def people_page(request: Request) -> Response:
    page = Page(request, Action.VIEW_IMAGES)
    if page.stop is not None:
        return page.stop
    gw = gateway(request)
    persons = await gw.locked(gw.engine.persons)
    sources = await gw.locked(gw.engine.sources)
    declaring = [s.name for s in sources if s.group_people]
    return page.render("people.html", {"persons": persons, "declaring": declaring})


@router.post("/people/group", response_class=HTMLResponse)
async def group_now(request: Request, csrf_token: str = Form(""), full: str = Form("")) -> Response:
    page = Page(request, Action.MANAGE_SOURCES)
    if page.stop is not None:
        return page.stop
    if not page.form_ok(csrf_token):
        return page.render("message.html", {"title": "Refused", "message": CSRF_MESSAGE}, 403)
    assert page.who is not None
    gw = gateway(request)
    await gw.locked(gw.engine.group_people, full == "on", requester(page.who))
    return RedirectResponse("/people", status_code=303)


async def _person_view(
    page: Page,
    person_id: int,
    result: SearchResult | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    gw = gateway(page.request)
    try:
        person = await gw.locked(gw.engine.person, person_id)
    except FacesearchError as exc:
        return page.render("message.html", {"title": "Not found", "message": str(exc)}, 404)
    images = [await run_in_threadpool(gw.image, i) for i in person.images]
    return page.render(
        "person.html",
        {"person": person, "images": images, "result": result, "error": error},
        status,
    )


@router.get("/people/{person_id}", response_class=HTMLResponse)
async def person_page(request: Request, person_id: PersonId) -> Response:
    page = Page(request, Action.VIEW_IMAGES)
    if page.stop is not None:
        return page.stop
    return await _person_view(page, person_id)


@router.post("/people/{person_id}/edit", response_class=HTMLResponse)
async def edit_person(
    request: Request,
    person_id: PersonId,
    csrf_token: str = Form(""),
    change: str = Form(""),
    name: str = Form("", max_length=200),
    others: str = Form("", max_length=2000),
    face_id: list[int] = Form([]),
) -> Response:
    page = Page(request, Action.MANAGE_SOURCES)
    if page.stop is not None:
        return page.stop
    if not page.form_ok(csrf_token):
        return await _person_view(page, person_id, error=CSRF_MESSAGE, status=403)
    assert page.who is not None
    gw, who = gateway(request), requester(page.who)
    target = person_id
    try:
        if change == "rename":
            await gw.locked(gw.engine.rename_person, person_id, name, who)
        elif change == "merge":
            ids = [int(x) for x in others.replace(",", " ").split() if x.isdigit()]
            if not ids:
                raise InvalidInput("give the ids of the persons to merge into this one")
            await gw.locked(gw.engine.merge_persons, person_id, ids, who)
        elif change == "split":
            _, new = await gw.locked(gw.engine.split_person, person_id, face_id, who)
            target = new.id
        else:
            raise InvalidInput(f"unknown change {change!r}")
    except FacesearchError as exc:
        return await _person_view(page, person_id, error=str(exc), status=400)
    return RedirectResponse(f"/people/{target}", status_code=303)


@router.post("/people/{person_id}/search", response_class=HTMLResponse)
async def search_person(
    request: Request,
    person_id: PersonId,
    csrf_token: str = Form(""),
    purpose: str = Form("", max_length=500),
    case_ref: str = Form("", max_length=200),
) -> Response:
    page = Page(request, Action.SEARCH)
    if page.stop is not None:
        return page.stop
    if not page.form_ok(csrf_token):
        return await _person_view(page, person_id, error=CSRF_MESSAGE, status=403)
    assert page.who is not None
    gw = gateway(request)
    who = replace(
        requester(page.who), purpose=purpose.strip() or None, case_ref=case_ref.strip() or None
    )
    try:
        gw.engine.check_requester(who)
        result = await gw.locked(gw.engine.search_person, person_id, who=who)
    except FacesearchError as exc:
        return await _person_view(page, person_id, error=str(exc), status=400)
    return await _person_view(page, person_id, result=result)


@router.get("/people/{person_id}/erase", response_class=HTMLResponse)
async def erase_person(request: Request, person_id: PersonId) -> Response:
    """The erase page's review step, from a person: nothing goes until confirmed."""
    page = Page(request, Action.DELETE)
    if page.stop is not None:
        return page.stop
    assert page.who is not None
    gw = gateway(request)
    try:
        result = await gw.locked(gw.engine.review_person, person_id, requester(page.who))
    except FacesearchError as exc:
        return page.render("message.html", {"title": "Not found", "message": str(exc)}, 404)
    return page.render("erase.html", {"step": "review", "result": result})


@router.post("/people/{person_id}/access-request", response_class=HTMLResponse)
async def person_access(
    request: Request, person_id: PersonId, csrf_token: str = Form("")
) -> Response:
    page = Page(request, Action.HANDLE_REQUESTS)
    if page.stop is not None:
        return page.stop
    if not page.form_ok(csrf_token):
        return page.render("access.html", {"report": None, "error": CSRF_MESSAGE}, 403)
    assert page.who is not None
    gw = gateway(request)
    try:
        report = await gw.locked(gw.engine.access_request_person, person_id, requester(page.who))
    except FacesearchError as exc:
        return page.render("access.html", {"report": None, "error": str(exc)}, 404)
    return _access_report_page(page, report)
