"""Collections on the web: the ingest page (upload photos, a zipped folder or a manifest
into a source; the page posts to /v1/ingest-jobs and polls the job for its progress) and
the browser of one source's images and failed files."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from facesearch.accounts.roles import Action
from facesearch.api import schemas
from facesearch.api.deps import gateway
from facesearch.errors import FacesearchError
from facesearch.web.pages import Page

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 48


@router.get("/ingest", response_class=HTMLResponse)
async def ingest_page(request: Request) -> Response:
    page = Page(request, Action.INGEST)
    if page.stop is not None:
        return page.stop
    gw = gateway(request)
    sources = await gw.locked(gw.engine.sources)
    limits = gw.engine.settings.limits
    return page.render(
        "ingest.html",
        {
            "sources": sources,
            "chosen": request.query_params.get("source", ""),
            "max_bytes": limits.max_bytes,
            "max_archive_files": limits.max_archive_files,
        },
    )


@router.get("/sources/{name}", response_class=HTMLResponse)
async def collection_page(request: Request, name: str) -> Response:
    page = Page(request, Action.LIST_SOURCES)
    if page.stop is not None:
        return page.stop
    assert page.who is not None
    gw = gateway(request)
    try:
        source = await gw.locked(gw.engine.source, name)
        failures = await gw.locked(gw.engine.failures, name, 500)
    except FacesearchError as exc:
        return page.render("message.html", {"title": "Not found", "message": str(exc)}, 404)
    after_text = request.query_params.get("after", "0")
    after = int(after_text) if after_text.isdigit() and len(after_text) < 19 else 0
    images: list[schemas.ImageOut] = []
    more = False
    if page.who.can(Action.VIEW_IMAGES):
        records = await gw.locked(
            gw.engine.list_images, after=after, limit=PAGE_SIZE + 1, source=name
        )
        more = len(records) > PAGE_SIZE
        images = [schemas.image(r) for r in records[:PAGE_SIZE]]
    return page.render(
        "collection.html",
        {
            "source": source,
            "images": images,
            "next_after": images[-1].id if more and images else None,
            "failures": failures,
            "file_name": schemas.file_name,
        },
    )
