"""Images: ingest an upload with its provenance, list, show, the file, face thumbnails."""

from __future__ import annotations

import os
import re
import uuid
from datetime import date, datetime
from pathlib import Path, PurePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from facesearch.accounts.roles import Action, Principal
from facesearch.api import cursors, schemas
from facesearch.api.auth import allow, rate_limit_ingest
from facesearch.api.deps import AUTH_ERRORS, MAX_ID, PLAIN_ID, errors, gateway
from facesearch.api.gateway import image_bytes
from facesearch.api.thumbnails import crop_face, shrink_image
from facesearch.api.uploads import read_upload
from facesearch.errors import InvalidInput, NotFound
from facesearch.imaging import decode_image
from facesearch.ingest.analyse import sha256_of
from facesearch.ingest.items import IngestItem, http_url

router = APIRouter(prefix="/v1", tags=["images"])

MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
IMAGE_CONTENT: dict[str, Any] = {"content": {"image/*": BINARY}, "description": "The file."}
JPEG_CONTENT: dict[str, Any] = {"content": {"image/jpeg": BINARY}, "description": "JPEG crop."}
ImageId = Annotated[int, PLAIN_ID, PathParam(ge=1, le=MAX_ID, description="Image id.")]
FaceId = Annotated[int, PLAIN_ID, PathParam(ge=1, le=MAX_ID, description="Face id.")]


def _url(value: str | None, field: str) -> str | None:
    return http_url(value, field)  # the manifest rows' check, so both refuse the same


def _captured(value: str | None) -> str | None:
    if not value:
        return None
    try:
        (datetime if "T" in value else date).fromisoformat(value)
    except ValueError:
        raise InvalidInput("captured_at must be an ISO 8601 date or date-time") from None
    return value


def _safe_name(name: str | None) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", PurePath(name or "").name)[-100:].lstrip(".")
    return base or "upload"


@router.post(
    "/images",
    status_code=201,
    response_model=schemas.IngestOut,
    summary="Ingest an uploaded image",
    responses=errors(
        400,
        404,
        413,
        415,
        429,
        *AUTH_ERRORS,
        extra={200: {"model": schemas.IngestOut, "description": "Already stored."}},
    ),
)
async def ingest_image(
    request: Request,
    image: UploadFile = File(description="The photo."),
    source: str = Form(min_length=1, max_length=200, description="Collection it belongs to."),
    source_url: str | None = Form(None, max_length=2000, description="URL of the image."),
    page_url: str | None = Form(None, max_length=2000, description="Page it was on."),
    captured_at: str | None = Form(None, max_length=40, description="ISO 8601 date."),
    who: Principal = Depends(allow(Action.INGEST)),
) -> Response:
    """Store the photo (kept in the home's `uploads/`), index its faces, record provenance.

    Nothing is written for an upload that is refused.
    """
    rate_limit_ingest(request, who)
    gw = gateway(request)
    if not source.strip():
        raise InvalidInput("source must not be blank")
    item_fields = {
        "source_url": _url(source_url, "source_url"),
        "page_url": _url(page_url, "page_url"),
        "captured_at": _captured(captured_at),
    }
    data = await read_upload(image, gw.engine.limits)
    sha = sha256_of(data)
    name = source.strip()
    # Refused uploads never touch the disk: the source and the image are checked from
    # memory first, and a file written for an ingest that then fails is removed.
    await gw.locked(gw.engine.source, name)
    await gw.infer(decode_image, data, gw.engine.limits)
    # Flat, named by content first (uploads/<sha256>-<name>): erasure finds it by hash.
    path = Path(gw.engine.home) / "uploads" / f"{sha}-{_safe_name(image.filename)}"
    created = await run_in_threadpool(_store, path, data)
    item = IngestItem(
        path=path,
        source_url=item_fields["source_url"],
        page_url=item_fields["page_url"],
        captured_at=item_fields["captured_at"],
    )
    try:
        report, image_id = await run_in_threadpool(gw.ingest_file, item, name, sha)
    except Exception:
        if created and not await run_in_threadpool(gw.kept, path, sha):
            path.unlink(missing_ok=True)
        raise
    record = await run_in_threadpool(gw.image, image_id)
    out = schemas.IngestOut(
        created=report.images_added > 0,
        faces_indexed=report.faces_indexed,
        image=schemas.image(record),
    )
    return Response(
        out.model_dump_json(),
        status_code=201 if out.created else 200,
        media_type="application/json",
    )


def _store(path: Path, data: bytes) -> bool:
    """Write ``data`` at ``path`` whole or not at all; False when it was already there."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".partial-{uuid.uuid4().hex}")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return True


@router.get(
    "/images",
    response_model=schemas.ImagesPage,
    summary="List images",
    responses=errors(400, 404, *AUTH_ERRORS),
)
async def list_images(
    request: Request,
    source: str | None = Query(None, max_length=200, description="Only this source."),
    cursor: str | None = Query(None, max_length=200, description="next_cursor of a page."),
    limit: int = Query(50, ge=1, le=200),
    who: Principal = Depends(allow(Action.VIEW_IMAGES)),
) -> schemas.ImagesPage:
    """Images in the order they were stored, a page at a time."""
    gw = gateway(request)
    after = cursors.decode(cursor, "after", int) or 0
    records = await gw.locked(gw.engine.list_images, after=after, limit=limit + 1, source=source)
    more = len(records) > limit
    records = records[:limit]
    return schemas.ImagesPage(
        items=[schemas.image(r) for r in records],
        next_cursor=cursors.encode({"after": records[-1].id}) if more else None,
    )


@router.get(
    "/images/{image_id}",
    response_model=schemas.ImageOut,
    summary="One image",
    responses=errors(404, *AUTH_ERRORS),
)
async def get_image(
    request: Request, image_id: ImageId, who: Principal = Depends(allow(Action.VIEW_IMAGES))
) -> schemas.ImageOut:
    """An image with its faces and every place it was ingested from."""
    gw = gateway(request)
    return schemas.image(await run_in_threadpool(gw.image, image_id))


@router.get(
    "/images/{image_id}/file",
    response_class=Response,
    summary="The image file",
    responses=errors(404, *AUTH_ERRORS, extra={200: IMAGE_CONTENT}),
)
async def get_image_file(
    request: Request, image_id: ImageId, who: Principal = Depends(allow(Action.VIEW_IMAGES))
) -> Response:
    """The stored file, as ingested (boxes refer to it after EXIF orientation).

    Served only while its SHA-256 is still the one recorded at ingest; 404 otherwise.
    """
    gw = gateway(request)
    record = await run_in_threadpool(gw.image, image_id)
    data = await run_in_threadpool(image_bytes, record)
    return Response(
        data,
        media_type=MEDIA_TYPES.get(record.format, "application/octet-stream"),
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
}


@router.get(
    "/images/{image_id}/video",
    response_class=Response,
    summary="The video a frame was taken from",
    responses=errors(404, *AUTH_ERRORS, extra={200: {"content": {"video/*": BINARY}}}),
)
async def get_image_video(
    request: Request, image_id: ImageId, who: Principal = Depends(allow(Action.VIEW_IMAGES))
) -> Response:
    """For an image that is a frame of a video: the video, with range requests, so that
    a link ending in `#t=SECONDS` (a result's `moment_url`) opens it at the moment."""
    gw = gateway(request)
    record = await run_in_threadpool(gw.image, image_id)
    for prov in record.provenance:
        if prov.video is None:
            continue
        video = Path(prov.video)
        if video.is_file() and not video.is_symlink():
            kind = VIDEO_TYPES.get(video.suffix.lower(), "application/octet-stream")
            return FileResponse(
                video,
                media_type=kind,
                headers={"Cache-Control": "private, max-age=3600"},
                content_disposition_type="inline",
            )
    raise NotFound(f"image {image_id} is not a frame of a video still on disk")


@router.get(
    "/images/{image_id}/thumbnail",
    response_class=Response,
    summary="The whole image, small",
    responses=errors(400, 404, *AUTH_ERRORS, extra={200: JPEG_CONTENT}),
)
async def image_thumbnail(
    request: Request, image_id: ImageId, who: Principal = Depends(allow(Action.VIEW_IMAGES))
) -> Response:
    """The whole image at most 320 px on its longer side (a result tile), made on request
    and not kept (face boxes scale onto it)."""
    gw = gateway(request)
    record = await run_in_threadpool(gw.image, image_id)
    stored = await run_in_threadpool(image_bytes, record)
    data = await gw.infer(shrink_image, stored, gw.engine.limits)
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )


@router.get(
    "/faces/{face_id}/thumbnail",
    response_class=Response,
    summary="A face crop",
    responses=errors(400, 404, *AUTH_ERRORS, extra={200: JPEG_CONTENT}),
)
async def face_thumbnail(
    request: Request, face_id: FaceId, who: Principal = Depends(allow(Action.VIEW_IMAGES))
) -> Response:
    """The face with a margin, at most 160 px, made on first request and cached."""
    gw = gateway(request)
    cache = request.app.state.thumbnails
    # Looked up even when cached: a face erased since is never served from the cache.
    record = await run_in_threadpool(gw.face_image, face_id)
    data = cache.get(face_id)
    if data is None:
        found = next(f for f in record.faces if f.id == face_id)
        stored = await run_in_threadpool(image_bytes, record)
        data = await gw.infer(crop_face, stored, found.box, gw.engine.limits)
        cache.put(face_id, data)
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
    )
