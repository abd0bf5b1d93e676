"""Removal: retention runs, erasure, and the review of a person's images before erasing."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from facesearch.accounts.roles import Action, Principal
from facesearch.api import schemas
from facesearch.api import schemas_governance as gov
from facesearch.api.auth import allow, requester
from facesearch.api.deps import AUTH_ERRORS, errors, gateway
from facesearch.api.memory_form import FACE_FIELD, photo_form_schema, read_photo_form
from facesearch.governance.erasure import Receipt

router = APIRouter(prefix="/v1", tags=["data protection"])


def forget_thumbnails(request: Request, receipt: Receipt) -> None:
    """Drop removed faces' crops from the memory cache too (they are never served anyway)."""
    if not receipt.dry_run:
        request.app.state.thumbnails.discard(receipt.face_ids)


@router.post(
    "/retention/run",
    response_model=gov.ReceiptOut,
    summary="Remove expired images now",
    responses=errors(*AUTH_ERRORS),
)
async def run_retention(
    request: Request,
    dry_run: bool = Query(False, description="Report what would go; remove nothing."),
    who: Principal = Depends(allow(Action.DELETE)),
) -> gov.ReceiptOut:
    """Every image past its source's retention period (legal holds excepted), with
    everything derived from it. The server also runs this on a schedule."""
    gw = gateway(request)
    receipt = await gw.locked(gw.engine.run_retention, dry_run=dry_run, who=requester(who))
    forget_thumbnails(request, receipt)
    return gov.receipt(receipt)


@router.post(
    "/erasures",
    response_model=gov.ReceiptOut,
    summary="Erase images",
    responses=errors(400, 404, *AUTH_ERRORS),
)
async def erase(
    request: Request, body: gov.ErasureIn, who: Principal = Depends(allow(Action.DELETE))
) -> gov.ReceiptOut:
    """Erase images by id, whole sources, or every source whose people include a
    jurisdiction: rows, templates, index entries and cached crops. Returns the receipt."""
    gw = gateway(request)
    receipt = await gw.locked(
        gw.engine.erase,
        image_ids=body.image_ids,
        sources=body.sources,
        jurisdiction=body.jurisdiction,
        dry_run=body.dry_run,
        who=requester(who),
        reason=body.reason,
    )
    forget_thumbnails(request, receipt)
    return gov.receipt(receipt)


@router.post(
    "/erasures/review",
    response_model=gov.ReviewOut,
    summary="Find a person's images to erase",
    responses=errors(400, 413, 415, 422, *AUTH_ERRORS),
    openapi_extra=photo_form_schema(
        face=FACE_FIELD,
        threshold={
            "type": "number",
            "minimum": -1,
            "maximum": 1,
            "description": "Similarity (default: the strict threshold).",
        },
    ),
)
async def review(request: Request, who: Principal = Depends(allow(Action.DELETE))) -> gov.ReviewOut:
    """Every image in which the person in `image` appears at or above the strict
    threshold (including images withheld by an objection), for review before erasing
    the ones selected with `POST /v1/erasures`. The photo is not kept."""
    gw = gateway(request)
    form = await read_photo_form(request, gw.engine.limits)
    result = await gw.locked(
        gw.engine.find_person,
        await gw.probe_photo(form.photo),
        threshold=form.number("threshold", -1.0, 1.0),
        face=form.integer("face", 0, 10_000),
        who=requester(who),
    )
    return gov.ReviewOut(
        threshold=result.threshold,
        face=result.probe_face.index,
        probe_faces=[
            schemas.ProbeFaceOut(index=f.index, box=schemas.box(f.box), score=f.score, size=f.size)
            for f in result.probe_faces
        ],
        matches=[schemas.match(m, m.rank, None) for m in result.matches],
    )
