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
MAX_PROBES = 10
DATE_OVERFETCH = 5  # a date filter is applied to this many times top_k candidates
JURISDICTION_HEADER = "X-Requester-Jurisdiction"
_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


class SearchForm:
    """The search form's fields (adding a required field is one parameter here)."""

    def __init__(
        self,
        image: list[UploadFile] | None = File(
            None,
            description="The probe photo; repeat the field to search with several photos "
            "of one person (the largest face of each).",
        ),
        image_id: Annotated[int | None, PLAIN_ID] = Form(
            None, ge=1, le=MAX_ID, description="Or: search with an image already stored."
        ),
        face_id: list[int] | None = Form(
            None,
            description="Or, or as well: a stored face (a result's face_id) to search "
            "with, audited like a photo (repeatable). The face itself is not returned.",
        ),
        combine: str = Form(
            "mean",
            description="How several probes are combined: max (a face's best similarity "
            "to any probe) or mean (its similarity to the probes' mean embedding).",
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
        self.images = [i for i in (image or []) if i.filename or i.size]
        self.image_id = image_id
        self.face_ids = list(dict.fromkeys(face_id or []))
        for fid in self.face_ids:
            if not 1 <= fid <= MAX_ID:
                raise InvalidInput(f"face_id {fid} is not a face id")
        if len(self.images) + len(self.face_ids) > MAX_PROBES:
            raise InvalidInput(f"at most {MAX_PROBES} probes (photos and face ids) per search")
        self.combine = combine
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
    given = len(form.images) + (form.image_id is not None)
    if not given and not form.face_ids:
        raise InvalidInput(
            "send a photo in the field 'image', an 'image_id', or a stored 'face_id'"
        )
    if form.image_id is not None and form.images:
        raise InvalidInput("send either photos in the field 'image' or an 'image_id', not both")
    photos = [await read_upload(upload, gw.engine.limits) for upload in form.images]
    if form.image_id is not None:
        record = await run_in_threadpool(gw.image, form.image_id)
        photos.append(await run_in_threadpool(image_bytes, record))
    timings = Timings()
    timings.add("upload", started)  # auth, rate limit, multipart parsing, checks
    probes = [await gw.infer(gw.probe, data, timings, timings=timings) for data in photos]
    for n, found in enumerate(probes):
        if not found.faces:
            where = f" {n + 1}" if len(probes) > 1 else ""
            raise NoFaceFound(f"no face found in the probe photo{where}")
    top_k = form.top_k or gw.engine.settings.search.top_k
    fetch = min(top_k * DATE_OVERFETCH, MAX_TOP_K * DATE_OVERFETCH) if form.dated else top_k
    t = time.perf_counter()
    if len(probes) == 1 and not form.face_ids:
        result = await run_in_threadpool(
            gw.search, probes[0], form.face, fetch, form.threshold, form.sources, asking
        )
    else:
        result = await run_in_threadpool(
            gw.search_many,
            probes,
            form.face_ids,
            form.combine,
            fetch,
            form.threshold,
            form.sources,
            asking,
        )
    t = timings.add("search", t)
    rows: list[tuple[Match, Provenance | None]] = [(m, form.shown(m)) for m in result.matches]
    if form.dated:
        rows = [row for row in rows if row[1] is not None][:top_k]
    matches = [schemas.match(m, rank, p) for rank, (m, p) in enumerate(rows, start=1)]
    probe = probes[0] if probes else None
    body = schemas.SearchOut(
        request_id=request_id(request),
        notice=schemas.NOTICE,
        model=result.model.key,
        threshold=result.threshold,
        face=result.probe_face.index,
        probe=schemas.probe(probe) if probe else None,
        probes=[schemas.probe(p) for p in probes],
        face_ids=form.face_ids,
        combine=result.combine,
        faces_searched=result.faces_searched,
        reliable=result.reliable,
        verdict=schemas.verdict(result),
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
