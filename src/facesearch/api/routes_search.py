"""POST /v1/search: the probe's faces, and for one of them the ranked matches."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from facesearch.accounts.roles import Action, Principal
from facesearch.api import schemas
from facesearch.api.auth import allow, rate_limit_search, requester
from facesearch.api.deps import AUTH_ERRORS, MAX_ID, PLAIN_ID, errors, gateway
from facesearch.api.errors import request_id
from facesearch.api.gateway import image_bytes
from facesearch.api.uploads import read_upload
from facesearch.domain import Match, Provenance, Requester
from facesearch.errors import InvalidInput, NoFaceFound
from facesearch.serving.pool import Timings

router = APIRouter(prefix="/v1", tags=["search"])

MAX_TOP_K = 500
DATE_OVERFETCH = 5  # a date filter is applied to this many times top_k candidates
JURISDICTION_HEADER = "X-Requester-Jurisdiction"
_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


class SearchForm:
    """The search form's fields (adding a required field is one parameter here)."""

    def __init__(
        self,
        image: UploadFile | None = File(None, description="The probe photo."),
        image_id: Annotated[int | None, PLAIN_ID] = Form(
            None, ge=1, le=MAX_ID, description="Or: search with an image already stored."
        ),
        top_k: int | None = Form(None, ge=1, le=MAX_TOP_K, description="Images to return."),
        threshold: float | None = Form(
            None, ge=-1, le=1, description="Similarity counted as a likely match."
        ),
        face: int | None = Form(
            None, ge=0, le=10_000, description="Which probe face (0, the largest, by default)."
        ),
        source: list[str] | None = Form(None, description="Only these sources (repeatable)."),
        captured_from: date | None = Form(None, description="Captured on or after (a date)."),
        captured_to: date | None = Form(None, description="Captured on or before (a date)."),
        purpose: str | None = Form(
            None,
            max_length=500,
            description="Why this search is made (required unless the deployment says not).",
        ),
        case_ref: str | None = Form(
            None,
            max_length=200,
            description="The case or matter it belongs to (required unless the deployment "
            "says not).",
        ),
        jurisdiction: str | None = Form(
            None,
            max_length=10,
            description="The requester's ISO 3166 jurisdiction (or the X-Requester-Jurisdiction "
            "header).",
        ),
    ) -> None:
        self.image = image
        self.image_id = image_id
        self.top_k = top_k
        self.threshold = threshold
        self.face = face
        self.sources = [s for s in (source or []) if s] or None
        self.captured_from = captured_from
        self.captured_to = captured_to
        self.purpose = (purpose or "").strip() or None
        self.case_ref = (case_ref or "").strip() or None
        self.jurisdiction = (jurisdiction or "").strip().upper() or None

    def requester(self, request: Request, who: Principal) -> Requester:
        """Who asks and why, as the engine checks it and the audit log records it."""
        header = (request.headers.get(JURISDICTION_HEADER) or "").strip().upper() or None
        if header and self.jurisdiction and header != self.jurisdiction:
            raise InvalidInput(
                f"the jurisdiction field ({self.jurisdiction}) and the {JURISDICTION_HEADER} "
                f"header ({header}) differ"
            )
        place = self.jurisdiction or header
        if place is not None and not _JURISDICTION.match(place):
            raise InvalidInput(f"jurisdiction {place!r} is not an ISO 3166 code such as GB or FR")
        return replace(
            requester(who), purpose=self.purpose, case_ref=self.case_ref, jurisdiction=place
        )

    @property
    def dated(self) -> bool:
        return self.captured_from is not None or self.captured_to is not None

    def in_range(self, p: Provenance) -> bool:
        day = (p.captured_at or "")[:10]
        if not day:
            return False
        lo = self.captured_from.isoformat() if self.captured_from else ""
        hi = self.captured_to.isoformat() if self.captured_to else "9999-12-31"
        return lo <= day <= hi

    def shown(self, m: Match) -> Provenance | None:
        """The copy of the image to headline: the first that passes the filters."""
        for p in m.image.provenance:
            if (self.sources is None or p.source in self.sources) and (
                not self.dated or self.in_range(p)
            ):
                return p
        return None


@router.post(
    "/search",
    response_model=schemas.SearchOut,
    summary="Search by face",
    responses=errors(400, 404, 413, 415, 429, *AUTH_ERRORS),
)
async def search(
    request: Request,
    form: SearchForm = Depends(),
    who: Principal = Depends(allow(Action.SEARCH)),
) -> Response:
    """Find the faces in the probe and rank stored images by the chosen face.

    Send the photo as multipart field `image`, or `image_id` for a stored image, with
    the search's `purpose` and `case_ref` (refused with 400 without them, unless the
    deployment switched that off). The requester's jurisdiction comes from the
    `jurisdiction` field or the `X-Requester-Jurisdiction` header; a jurisdiction the
    deployment blocks is refused with 403.
    Results are one row per image (its best face), best first. The Server-Timing header
    splits the time into upload, queue (waiting for a model worker), decode, detect,
    embed, search (index and catalog) and respond (serialising the answer).
    """
    started = time.perf_counter()
    rate_limit_search(request, who)
    gw = gateway(request)
    asking = form.requester(request, who)
    gw.engine.check_requester(asking)  # before any work: no purpose, or a blocked place
    if (form.image is None) == (form.image_id is None):
        raise InvalidInput("send either a photo in the field 'image' or an 'image_id'")
    if form.image is not None:
        data = await read_upload(form.image, gw.engine.limits)
    else:
        assert form.image_id is not None
        record = await run_in_threadpool(gw.image, form.image_id)
        data = await run_in_threadpool(image_bytes, record)
    timings = Timings()
    timings.add("upload", started)  # auth, rate limit, multipart parsing, checks
    probe = await gw.infer(gw.probe, data, timings, timings=timings)
    if not probe.faces:
        raise NoFaceFound("no face found in the probe photo")
    top_k = form.top_k or gw.engine.settings.search.top_k
    fetch = min(top_k * DATE_OVERFETCH, MAX_TOP_K * DATE_OVERFETCH) if form.dated else top_k
    t = time.perf_counter()
    result = await run_in_threadpool(
        gw.search, probe, form.face, fetch, form.threshold, form.sources, asking
    )
    t = timings.add("search", t)
    rows: list[tuple[Match, Provenance | None]] = [(m, form.shown(m)) for m in result.matches]
    if form.dated:
        rows = [row for row in rows if row[1] is not None][:top_k]
    matches = [schemas.match(m, rank, p) for rank, (m, p) in enumerate(rows, start=1)]
    height, width = probe.pixels.shape[:2]
    body = schemas.SearchOut(
        request_id=request_id(request),
        notice=schemas.NOTICE,
        model=result.model.key,
        threshold=result.threshold,
        face=result.probe_face.index,
        probe=schemas.ProbeOut(
            sha256=probe.sha256,
            width=width,
            height=height,
            faces=[
                schemas.ProbeFaceOut(
                    index=f.index, box=schemas.box(f.box), score=f.score, size=f.size
                )
                for f in probe.faces
            ],
        ),
        likely_matches=sum(m.is_match for m in matches),
        matches=matches,
        timings_ms=dict(timings.stages),
    )
    content = body.model_dump_json().encode()
    timings.add("respond", t)
    total = (time.perf_counter() - started) * 1000
    server_timing = ", ".join(f"{k};dur={v:.2f}" for k, v in timings.stages.items())
    return Response(
        content,
        media_type="application/json",
        headers={"Server-Timing": f"{server_timing}, total;dur={total:.2f}"},
    )
