"""Ingest jobs (photos, zipped folders, manifests uploaded at once, ingested in the
background) and the failed files of a source."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from facesearch.accounts.roles import Action, Principal
from facesearch.api import schemas_governance as gov
from facesearch.api.auth import allow, caller_key, rate_limit_ingest, requester
from facesearch.api.deps import AUTH_ERRORS, errors, gateway
from facesearch.api.jobs import IngestJob, IngestJobs, stage_upload
from facesearch.api.uploads import too_large
from facesearch.errors import InvalidInput, NotFound
from facesearch.ingest.archive import ArchiveLimits

router = APIRouter(prefix="/v1", tags=["images"])
Name = Annotated[str, PathParam(pattern=gov.SOURCE_NAME, description="Source name.")]


class FailedFile(BaseModel):
    file: str = Field(description="The file as uploaded (a zip member: zip/name).")
    path: str
    reason: str


class IngestJobOut(BaseModel):
    id: str
    source: str
    state: str = Field(description="queued, running, done or failed.")
    files: int = Field(description="Files in the upload (a zip counts its members).")
    done: int = Field(description="Files handled so far: the progress bar.")
    images_added: int
    copies_added: int
    unchanged: int
    faces_indexed: int
    images_without_faces: int
    failed: list[FailedFile]
    error: str | None = Field(description="Why the job stopped, when state is failed.")
    seconds: float


class FailureOut(BaseModel):
    source: str
    path: str
    reason: str
    at: str


def jobs(request: Request) -> IngestJobs:
    board: IngestJobs = request.app.state.ingest_jobs
    return board


def _out(job: IngestJob) -> IngestJobOut:
    return IngestJobOut(**job.as_dict())


@router.post(
    "/ingest-jobs",
    status_code=202,
    response_model=IngestJobOut,
    summary="Upload photos, a zipped folder or a manifest to ingest",
    responses=errors(400, 404, 413, 429, *AUTH_ERRORS),
)
async def create_ingest_job(
    request: Request,
    files: list[UploadFile] = File(description="Photos, zips of folders, CSV/JSONL manifests."),
    source: str = Form(min_length=1, max_length=200, description="Registered source."),
    who: Principal = Depends(allow(Action.INGEST)),
) -> JSONResponse:
    """Check the upload whole, then ingest it in the background; poll the job's URL
    (`Location`) for progress. A file that is not an image, zip or manifest, or a zip with
    a path outside its folder, a link, or too many or too large members (a zip bomb)
    refuses the request and nothing is stored. Files that fail later (not decodable) are
    listed with their reasons, and removed."""
    rate_limit_ingest(request, who)
    gw = gateway(request)
    name = source.strip()
    await gw.locked(gw.engine.source, name)  # NotFound before anything is written
    settings = gw.engine.settings.limits
    uploaded: list[tuple[str, bytes]] = []
    for upload in files:
        data = await upload.read(settings.max_bytes + 1)
        if len(data) > settings.max_bytes:
            raise too_large(f"{upload.filename} is over the limit of {settings.max_bytes} bytes")
        if not data:
            raise InvalidInput(f"{upload.filename or 'a file'} is empty; nothing was stored")
        uploaded.append((upload.filename or "upload", data))
    limits = ArchiveLimits(
        max_files=settings.max_archive_files,
        max_total_bytes=settings.max_archive_bytes,
        max_file_bytes=settings.max_bytes,
    )
    staged = await run_in_threadpool(stage_upload, uploaded, gw.engine.home, limits)
    job = jobs(request).start(gw, staged, name, caller_key(request, who), requester(who))
    return JSONResponse(
        _out(job).model_dump(),
        status_code=202,
        headers={"Location": f"/v1/ingest-jobs/{job.id}"},
    )


@router.get(
    "/ingest-jobs/{job_id}",
    response_model=IngestJobOut,
    summary="An ingest job's progress",
    responses=errors(404, *AUTH_ERRORS),
)
async def get_ingest_job(
    request: Request,
    job_id: Annotated[str, PathParam(pattern="^[0-9a-f]{32}$")],
    who: Principal = Depends(allow(Action.INGEST)),
) -> IngestJobOut:
    """Files done out of all, what was added, and each failed file with its reason. Only
    the caller who started the job (or an admin) sees it."""
    job = jobs(request).get(job_id)
    if job is None or not (job.owner == caller_key(request, who) or who.can(Action.MANAGE_SOURCES)):
        raise NotFound(f"no ingest job {job_id}")
    return _out(job)


@router.get(
    "/sources/{name}/failures",
    response_model=list[FailureOut],
    summary="Files of a source that could not be ingested",
    responses=errors(404, *AUTH_ERRORS),
)
async def source_failures(
    request: Request,
    name: Name,
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(allow(Action.LIST_SOURCES)),
) -> list[dict[str, Any]]:
    """Each file's path and the reason it was refused, oldest first (a file that later
    ingests cleanly leaves this list)."""
    gw = gateway(request)
    return await gw.locked(gw.engine.failures, name, limit)
