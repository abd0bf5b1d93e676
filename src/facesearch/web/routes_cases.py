"""The case pages: one page per case reference (every search made under it, its results
and audit entries), and the same case file as HTML or PDF to take away."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from facesearch.accounts.roles import Action
from facesearch.api.auth import requester
from facesearch.api.deps import gateway
from facesearch.errors import FacesearchError, NotFound
from facesearch.governance import casefile
from facesearch.web.pages import Page

router = APIRouter(include_in_schema=False)
CaseRef = Annotated[str, PathParam(min_length=1, max_length=200)]
FORMATS = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}


async def _case(page: Page, case_ref: str, fmt: str) -> casefile.CaseFile:
    assert page.who is not None
    gw = gateway(page.request)
    # Reading a case file is recorded under that case.
    who = replace(requester(page.who), case_ref=case_ref)
    return await gw.locked(gw.engine.case_file, case_ref, who, fmt)


@router.get("/cases/{case_ref}", response_class=HTMLResponse)
async def case_page(request: Request, case_ref: CaseRef) -> Response:
    page = Page(request, Action.AUDIT)
    if page.stop is not None:
        return page.stop
    try:
        case = await _case(page, case_ref, "page")
    except FacesearchError as exc:
        status = 404 if isinstance(exc, NotFound) else 400
        return page.render("message.html", {"title": "No case file", "message": str(exc)}, status)
    return page.render("case.html", {"case": case})


@router.get("/cases/{case_ref}/file.{fmt}")
async def case_download(request: Request, case_ref: CaseRef, fmt: str) -> Response:
    page = Page(request, Action.AUDIT)
    if page.stop is not None:
        return page.stop
    if fmt not in FORMATS:
        return page.render(
            "message.html", {"title": "No such format", "message": "Ask for .html or .pdf."}, 404
        )
    try:
        case = await _case(page, case_ref, fmt)
    except FacesearchError as exc:
        status = 404 if isinstance(exc, NotFound) else 400
        return page.render("message.html", {"title": "No case file", "message": str(exc)}, status)
    body = casefile.to_pdf(case) if fmt == "pdf" else casefile.to_html(case).encode()
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in case.case_ref)
    return Response(
        body,
        media_type=FORMATS[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="case-{safe}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )
