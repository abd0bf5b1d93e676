"""Data subjects' requests, handled by the operator: access requests and objections.

The person's photo is read into memory (never spooled to disk), used, and dropped: it is
not written to the home, a cache or a log. The audit log records that a request was
handled, the photo's SHA-256 and the number of images found. A request by URL (where the
photos were published) needs no photo; the log keeps a keyed hash of the URL, not the URL.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response

from facesearch.accounts.roles import Action, Principal
from facesearch.api import schemas_governance as gov
from facesearch.api.auth import allow, requester
from facesearch.api.deps import AUTH_ERRORS, MAX_ID, PLAIN_ID, errors, gateway
from facesearch.api.memory_form import FACE_FIELD, photo_form_schema, read_photo_form
from facesearch.errors import InvalidInput
from facesearch.governance.access import access_report_html

router = APIRouter(prefix="/v1", tags=["data protection"])
NO_STORE = {"Cache-Control": "no-store"}
HTML_CONTENT: dict[str, Any] = {
    "content": {"text/html": {"schema": {"type": "string"}}},
    "description": "The report as one self-contained HTML document (with ?format=html).",
}


@router.post(
    "/access-requests",
    response_model=gov.AccessReportOut,
    summary="Handle an access request",
    responses=errors(400, 413, 415, 422, *AUTH_ERRORS, extra={200: HTML_CONTENT}),
    openapi_extra=photo_form_schema(face=FACE_FIELD),
)
async def access_request(
    request: Request,
    format: Literal["json", "html"] = Query("json", description="json, or html to hand over."),
    who: Principal = Depends(allow(Action.HANDLE_REQUESTS)),
) -> Response:
    """ "Am I in here?": every image of the person in `image` at or above the strict
    threshold, with its source, lawful basis, origin, collection date and retention, and
    the person's rights. The photo is processed in memory only and never stored."""
    gw = gateway(request)
    form = await read_photo_form(request, gw.engine.limits)
    report = await gw.locked(
        gw.engine.access_request,
        await gw.probe_photo(form.photo),
        face=form.integer("face", 0, 10_000),
        who=requester(who),
    )
    return _report_response(report, format)


@router.post(
    "/access-requests/by-url",
    response_model=gov.AccessReportOut,
    summary="Handle an access request by URL",
    responses=errors(400, *AUTH_ERRORS, extra={200: HTML_CONTENT}),
)
async def access_request_by_url(
    request: Request,
    body: gov.AccessByUrlIn,
    format: Literal["json", "html"] = Query("json", description="json, or html to hand over."),
    who: Principal = Depends(allow(Action.HANDLE_REQUESTS)),
) -> Response:
    """ "Am I in here?" without a photo: every image with a copy published at `url`
    (its page or file URL), or under it with `match: prefix` (a profile, a site), with
    the same report as by photo. Images withheld from searches by an objection are
    included. Only the audit entry is kept: a keyed hash of the URL, not the URL."""
    gw = gateway(request)
    report = await gw.locked(
        gw.engine.access_request_by_url,
        body.url,
        prefix=body.match == "prefix",
        who=requester(who),
    )
    return _report_response(report, format)


def _report_response(report: dict[str, Any], format: str) -> Response:
    if format == "html":
        name = f"access-request-{report['request_id']}.html"
        return HTMLResponse(
            access_report_html(report),
            headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
        )
    return JSONResponse(report, headers=NO_STORE)


@router.post(
    "/suppressions",
    status_code=201,
    response_model=gov.SuppressionOut,
    summary="Add an objection",
    responses=errors(400, 413, 415, 422, *AUTH_ERRORS),
    openapi_extra=photo_form_schema(
        ("consent_ref",),
        consent_ref={"type": "string", "minLength": 1, "maxLength": 200},
        note={"type": "string", "maxLength": 500},
        face=FACE_FIELD,
    ),
)
async def add_suppression(
    request: Request, who: Principal = Depends(allow(Action.HANDLE_REQUESTS))
) -> gov.SuppressionOut:
    """Put the person in `image` on the suppression list, with the reference of their
    consent to keep one template for that sole purpose: ingest then skips their faces and
    searches never return them. The photo itself is not kept."""
    gw = gateway(request)
    form = await read_photo_form(request, gw.engine.limits)
    consent = form.text("consent_ref", 200)
    if not consent:
        raise InvalidInput("consent_ref is required: the reference of the person's consent")
    sid = await gw.locked(
        gw.engine.suppress,
        await gw.probe_photo(form.photo),
        consent,
        form.text("note", 500),
        face=form.integer("face", 0, 10_000),
        who=requester(who),
    )
    rows = await gw.locked(gw.engine.suppressions.list)
    return gov.SuppressionOut(**next(r for r in rows if r["id"] == sid))


@router.get(
    "/suppressions",
    response_model=gov.SuppressionsPage,
    summary="List objections",
    responses=errors(*AUTH_ERRORS),
)
async def list_suppressions(
    request: Request, who: Principal = Depends(allow(Action.HANDLE_REQUESTS))
) -> gov.SuppressionsPage:
    """Entries of the suppression list (never their templates)."""
    gw = gateway(request)
    rows = await gw.locked(gw.engine.suppressions.list)
    return gov.SuppressionsPage(items=[gov.SuppressionOut(**r) for r in rows])


@router.delete(
    "/suppressions/{suppression_id}",
    response_model=gov.SuppressionOut,
    summary="Remove an objection",
    responses=errors(404, *AUTH_ERRORS),
)
async def remove_suppression(
    request: Request,
    suppression_id: Annotated[int, PLAIN_ID, PathParam(ge=1, le=MAX_ID)],
    who: Principal = Depends(allow(Action.HANDLE_REQUESTS)),
) -> gov.SuppressionOut:
    """The template is deleted (securely); the person's faces are searchable again."""
    gw = gateway(request)

    def remove() -> dict[str, Any]:
        rows = {r["id"]: r for r in gw.engine.suppressions.list()}
        gw.engine.remove_suppression(suppression_id, requester(who))  # NotFound: 404
        return rows[suppression_id]

    return gov.SuppressionOut(**await gw.locked(remove))
