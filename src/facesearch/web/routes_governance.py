"""Pages for data protection: sources (admins add and edit), erase a person, access
requests, and the audit log. Every form carries the session's CSRF token; photos are read
into memory (never a temporary file) and dropped after the request."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from facesearch import domain
from facesearch.accounts.roles import Action
from facesearch.api.auth import requester
from facesearch.api.deps import gateway
from facesearch.api.memory_form import PhotoForm, read_photo_form
from facesearch.domain import Requester, Source
from facesearch.errors import FacesearchError, InvalidInput, NotFound
from facesearch.governance.access import access_report_html, summary
from facesearch.governance.policy import (
    ART6_BASES,
    ART9_CONDITIONS,
    parse_jurisdictions,
    parse_period,
    parse_time,
)
from facesearch.web.pages import Page

router = APIRouter(include_in_schema=False)
CSRF_MESSAGE = "Missing or wrong CSRF token: nothing was changed."


# -- sources ---------------------------------------------------------------------------
@router.get("/sources", response_class=HTMLResponse)
async def sources_page(request: Request) -> Response:
    page = Page(request, Action.LIST_SOURCES)
    if page.stop is not None:
        return page.stop
    return await sources_view(page)


async def sources_view(page: Page, error: str = "", status: int = 200) -> Response:
    gw = gateway(page.request)
    sources = await gw.locked(gw.engine.sources)
    return page.render(
        "sources.html",
        {"sources": sources, "bases": ART6_BASES, "conditions": ART9_CONDITIONS, "error": error},
        status,
    )


class PolicyForm:
    """The fields of the add-source and edit-source forms (FastAPI fills it from Form)."""

    def __init__(
        self,
        csrf_token: str = Form(""),
        lawful_basis: str = Form(""),
        condition: str = Form(""),
        retention: str = Form("", max_length=20),
        jurisdictions: str = Form("", max_length=2000),
        description: str = Form("", max_length=2000),
        controller: str = Form("", max_length=500),
        contact: str = Form("", max_length=500),
        legal_hold: str = Form(""),
        group_people: str = Form(""),
    ) -> None:
        self.csrf_token = csrf_token
        self.group_people = group_people == "on"
        self.fields = (
            lawful_basis, condition, retention, jurisdictions, description, controller, contact,
            legal_hold,
        )  # fmt: skip

    def policy(self) -> dict[str, Any]:
        """The policy as Source fields; InvalidInput for a period or jurisdiction list that
        does not parse."""
        basis, condition, retention, jurisdictions, description, controller, contact, hold = (
            self.fields
        )
        return {
            "lawful_basis": basis,
            "special_category_condition": condition,
            "retention_days": parse_period(retention),
            "jurisdictions": parse_jurisdictions(jurisdictions),
            "description": description.strip(),
            "controller": controller.strip(),
            "contact": contact.strip(),
            "legal_hold": hold == "on",
            "group_people": self.group_people,
        }


async def _save_source(
    request: Request,
    form: PolicyForm,
    save: Callable[[Requester, dict[str, Any]], Any],
    status: int,
) -> Response:
    """Check role and CSRF token, then add or update through ``save``; the sources page
    again, with the error when the engine refused."""
    page = Page(request, Action.MANAGE_SOURCES)
    if page.stop is not None:
        return page.stop
    if not page.form_ok(form.csrf_token):
        return await sources_view(page, CSRF_MESSAGE, 403)
    assert page.who is not None
    who = requester(page.who)
    try:
        policy = form.policy()
        await gateway(request).locked(save, who, policy)
    except FacesearchError as exc:
        return await sources_view(page, str(exc), 404 if isinstance(exc, NotFound) else 400)
    return await sources_view(page, "", status)


@router.post("/sources", response_class=HTMLResponse)
async def add_source(
    request: Request,
    form: Annotated[PolicyForm, Depends()],
    name: str = Form("", max_length=100),
) -> Response:
    engine = gateway(request).engine
    return await _save_source(
        request,
        form,
        lambda who, policy: engine.add_source(Source(name=name.strip(), **policy), who),
        201,
    )


@router.post("/sources/{name}", response_class=HTMLResponse)
async def update_source(
    request: Request, name: str, form: Annotated[PolicyForm, Depends()]
) -> Response:
    engine = gateway(request).engine
    return await _save_source(
        request, form, lambda who, policy: engine.update_source(name, who, **policy), 200
    )


# -- photo forms -----------------------------------------------------------------------
async def _photo(page: Page) -> PhotoForm | Response:
    """The upload of a photo form, or the page to answer with (CSRF, bad file)."""
    gw = gateway(page.request)
    try:
        form = await read_photo_form(page.request, gw.engine.limits)
    except FacesearchError as exc:
        return page.render(
            "message.html", {"title": "Cannot use this photo", "message": str(exc)}, 400
        )
    except Exception as exc:  # over a limit or not an image: the API's own 4xx
        message = getattr(exc, "message", "the upload could not be read")
        return page.render(
            "message.html",
            {"title": "Cannot use this photo", "message": message},
            getattr(exc, "status", 400),
        )
    if not page.form_ok(form.fields.get("csrf_token", "")):
        context = {"title": "Refused", "message": CSRF_MESSAGE}
        return page.render("message.html", context, 403)
    return form


# -- erase a person --------------------------------------------------------------------
@router.get("/admin/erase", response_class=HTMLResponse)
async def erase_page(request: Request) -> Response:
    page = Page(request, Action.DELETE)
    if page.stop is not None:
        return page.stop
    return page.render("erase.html", {"step": "upload"})


@router.post("/admin/erase/review", response_class=HTMLResponse)
async def erase_review(request: Request) -> Response:
    page = Page(request, Action.DELETE)
    if page.stop is not None:
        return page.stop
    form = await _photo(page)
    if isinstance(form, Response):
        return form
    assert page.who is not None
    gw = gateway(request)
    try:
        probe = await gw.probe_photo(form.photo)
        result = await gw.locked(gw.engine.find_person, probe, who=requester(page.who))
    except FacesearchError as exc:
        return page.render("erase.html", {"step": "upload", "error": str(exc)}, 422)
    return page.render("erase.html", {"step": "review", "result": result})


@router.post("/admin/erase", response_class=HTMLResponse)
async def erase(
    request: Request,
    csrf_token: str = Form(""),
    image_id: list[int] = Form([]),
    reason: str = Form("", max_length=1000),
) -> Response:
    page = Page(request, Action.DELETE)
    if page.stop is not None:
        return page.stop
    if not page.form_ok(csrf_token):
        return page.render("erase.html", {"step": "upload", "error": CSRF_MESSAGE}, 403)
    assert page.who is not None
    gw = gateway(request)
    try:
        if not image_id:
            raise InvalidInput("select at least one image to erase")
        receipt = await gw.locked(
            gw.engine.erase, image_ids=image_id, who=requester(page.who), reason=reason.strip()
        )
    except FacesearchError as exc:
        return page.render("erase.html", {"step": "upload", "error": str(exc)}, 400)
    request.app.state.thumbnails.discard(receipt.face_ids)
    return page.render("erase.html", {"step": "done", "receipt": receipt})


# -- access requests -------------------------------------------------------------------
@router.get("/admin/access-requests", response_class=HTMLResponse)
async def access_page(request: Request) -> Response:
    page = Page(request, Action.HANDLE_REQUESTS)
    if page.stop is not None:
        return page.stop
    return page.render("access.html", {"report": None})


@router.post("/admin/access-requests", response_class=HTMLResponse)
async def access_request(request: Request) -> Response:
    page = Page(request, Action.HANDLE_REQUESTS)
    if page.stop is not None:
        return page.stop
    form = await _photo(page)
    if isinstance(form, Response):
        return form
    assert page.who is not None
    gw = gateway(request)
    try:
        probe = await gw.probe_photo(form.photo)
        report = await gw.locked(gw.engine.access_request, probe, who=requester(page.who))
    except FacesearchError as exc:
        return page.render("access.html", {"report": None, "error": str(exc)}, 422)
    return _access_report_page(page, report)


@router.post("/admin/access-requests/by-url", response_class=HTMLResponse)
async def access_request_by_url(
    request: Request,
    csrf_token: str = Form(""),
    url: str = Form("", max_length=4096),
    match: str = Form("exact", max_length=10),
) -> Response:
    """The same report, asked by where the photos were published (no photo)."""
    page = Page(request, Action.HANDLE_REQUESTS)
    if page.stop is not None:
        return page.stop
    context = {"report": None, "url": url, "match": match}
    if not page.form_ok(csrf_token):
        return _no_store(page.render("access.html", {**context, "url_error": CSRF_MESSAGE}, 403))
    assert page.who is not None
    gw = gateway(request)
    try:
        if match not in ("exact", "prefix"):
            raise InvalidInput(
                "match must be 'exact' (that page) or 'prefix' (everything under it)"
            )
        report = await gw.locked(
            gw.engine.access_request_by_url,
            url,
            prefix=match == "prefix",
            who=requester(page.who),
        )
    except FacesearchError as exc:
        return _no_store(page.render("access.html", {**context, "url_error": str(exc)}, 400))
    return _access_report_page(page, report, url=url, match=match)


def _access_report_page(page: Page, report: dict[str, Any], **context: Any) -> Response:
    """The page with the report, and the report as an HTML file built into the page (the
    photo is not sent twice and nothing is kept)."""
    document = base64.b64encode(access_report_html(report).encode()).decode()
    return _no_store(
        page.render(
            "access.html",
            {**context, "report": report, "download": document, "summary": summary(report)},
        )
    )


def _no_store(response: Response) -> Response:
    """Pages that show a person's report or the address they asked about: not cached."""
    response.headers["Cache-Control"] = "no-store"
    return response


# -- audit -----------------------------------------------------------------------------
@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request) -> Response:
    """The log as a table, filtered by case, action, who and date (newest first)."""
    page = Page(request, Action.AUDIT)
    if page.stop is not None:
        return page.stop
    q = request.query_params
    filters = {k: q.get(k, "").strip()[:200] for k in ("case_ref", "action", "actor", "from", "to")}
    gw = gateway(request)
    assert page.who is not None
    who = requester(page.who)
    try:
        since = parse_time(filters["from"]).isoformat() if filters["from"] else None
        until = (
            (parse_time(filters["to"]) + timedelta(days=1)).isoformat() if filters["to"] else None
        )
    except InvalidInput as exc:
        return page.render("message.html", {"title": "Bad date", "message": str(exc)}, 400)

    def read() -> tuple[Any, list[Any]]:
        entries = gw.engine.read_audit(
            who,
            case_ref=filters["case_ref"] or None,
            action=filters["action"] or None,
            since=since,
            until=until,
            last=None if filters["actor"] else AUDIT_PAGE_ROWS,
        )
        if filters["actor"]:  # who: a part of the actor's name (the store has no index on it)
            entries = [e for e in entries if filters["actor"].lower() in e.actor.lower()]
        return gw.engine.verify_audit(), entries[-AUDIT_PAGE_ROWS:][::-1]

    verification, entries = await gw.locked(read)
    return page.render(
        "audit.html",
        {
            "entries": entries,
            "filters": filters,
            "case": filters["case_ref"],
            "actions": AUDIT_ACTIONS,
            "verification": verification,
            "summary": audit_summary,
        },
    )


AUDIT_PAGE_ROWS = 500
AUDIT_ACTIONS = sorted(
    {
        cls.action
        for cls in vars(domain).values()
        if isinstance(cls, type) and issubclass(cls, domain.Event) and "action" in vars(cls)
    }
)


def audit_summary(action: str, details: dict[str, Any]) -> str:
    """An entry's details in words (the raw values stay in the export and the API)."""
    d = details
    if action in ("search", "erasure.review"):
        text = f"{d.get('results', 0)} results, {d.get('likely_matches', 0)} likely"
        if d.get("faces_searched") is not None:
            text += f" among {d['faces_searched']} faces"
        if d.get("probes", 1) > 1:
            text += f"; {d['probes']} probes"
        if d.get("probe_face_ids"):
            text += f"; from stored face(s) {', '.join(map(str, d['probe_face_ids']))}"
        if d.get("sources"):
            text += f"; sources {', '.join(d['sources'])}"
        return text
    if action == "ingest":
        return (
            f"{d.get('source')}: {d.get('images_added', 0)} images, "
            f"{d.get('faces_indexed', 0)} faces, {d.get('failures', 0)} failed"
        )
    if action == "case.export":
        return f"case file of {d.get('case')} ({d.get('format')}): {d.get('searches')} searches"
    shown = [
        f"{k.replace('_', ' ')}: {v}"
        for k, v in d.items()
        if not isinstance(v, (list, dict, tuple)) and "sha" not in k and "hash" not in k
    ]
    return "; ".join(shown[:6])
