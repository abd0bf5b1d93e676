"""Pages of the web UI. They sign people in and render; searching goes through /v1/search.

Sessions live in an HttpOnly, SameSite=Strict cookie (Secure unless switched off for
plain-HTTP development). Every form carries the session's CSRF token; the sign-in form,
which has no session yet, carries a double-submit token instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from facesearch.accounts import credentials as cred
from facesearch.accounts.ratelimit import TokenBuckets
from facesearch.accounts.roles import Action, Principal, Role
from facesearch.api.auth import SESSION_COOKIE, auth_state
from facesearch.api.deps import MAX_ID, PLAIN_ID, gateway
from facesearch.api.routes_admin import new_key, revoked_key
from facesearch.errors import FacesearchError
from facesearch.web import routes_cases, routes_collections, routes_governance, routes_people
from facesearch.web.pages import HERE, Page, render

LOGIN_CSRF_COOKIE = "fs_login_csrf"
# Sign-in attempts per client address and username: slows password guessing to a crawl.
LOGIN_RATE_PER_MINUTE = 10
LOGIN_BURST = 10
# And per client address across usernames: one password tried on many accounts (spraying)
# is slowed as much as many passwords on one. A successful sign-in gives its tokens back:
# people signing in often, or many from one office address, are not throttled.
LOGIN_ADDRESS_RATE_PER_MINUTE = 20
LOGIN_ADDRESS_BURST = 10
router = APIRouter(include_in_schema=False)


def mount(app: FastAPI, clock: Callable[[], float] = time.monotonic) -> None:
    app.state.login_limits = TokenBuckets(LOGIN_RATE_PER_MINUTE, LOGIN_BURST, clock)
    app.state.login_address_limits = TokenBuckets(
        LOGIN_ADDRESS_RATE_PER_MINUTE, LOGIN_ADDRESS_BURST, clock
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)
    app.include_router(routes_governance.router)
    app.include_router(routes_collections.router)
    app.include_router(routes_cases.router)
    app.include_router(routes_people.router)


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=auth_state(request).secure_cookies,
        samesite="strict",
        path="/",
    )


# -- sign in and out -------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    return _login_form(request, "", 200)


def _login_form(request: Request, error: str, status: int) -> Response:
    token = cred.token()
    response = render(
        request, "login.html", {"who": None, "login_csrf": token, "error": error}, status
    )
    _cookie(response, request, LOGIN_CSRF_COOKIE, token, 3600)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    csrf_token: str = Form(""),
    username: str = Form(""),
    password: str = Form(""),
    api_key: str = Form(""),
) -> Response:
    auth = auth_state(request)
    limits: TokenBuckets = request.app.state.login_limits
    per_address: TokenBuckets = request.app.state.login_address_limits
    # The connecting address, or what a configured trusted proxy says (api.trusted_proxies).
    client = request.client.host if request.client else "unknown"
    attempt = f"{client}:{username.strip() or 'api-key'}"
    wait = max(per_address.take(client), limits.take(attempt))
    if wait > 0:
        response = _login_form(request, "Too many sign-in attempts; wait a minute.", 429)
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not csrf_token or not cred.same(expected, csrf_token):
        return _login_form(
            request, "The form expired or was not sent from this site; try again.", 403
        )
    who: Principal | None = None
    if api_key.strip():
        who = await run_in_threadpool(auth.store.check_key, api_key.strip())
    elif username.strip():
        who = await run_in_threadpool(auth.store.check_password, username, password)
    if who is None:
        return _login_form(request, "Unknown user or key, or wrong password.", 401)
    per_address.refund(client)
    limits.refund(attempt)
    session, _ = await run_in_threadpool(auth.store.open_session, who, auth.session_hours)
    response = RedirectResponse("/", status_code=303)
    _cookie(response, request, SESSION_COOKIE, session, int(auth.session_hours * 3600))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, csrf_token: str = Form("")) -> Response:
    page = Page(request, None)
    if page.stop is not None:
        return page.stop
    if not page.form_ok(csrf_token):
        return page.render(
            "message.html",
            {"title": "Not signed out", "message": "Missing or wrong CSRF token."},
            403,
        )
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        auth_state(request).store.close_session(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- pages -----------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
async def search_page(request: Request) -> Response:
    page = Page(request, Action.SEARCH)
    if page.stop is not None:
        return page.stop
    gw = gateway(request)
    sources = await gw.locked(gw.engine.sources)
    return page.render(
        "search.html",
        {"sources": sources, "threshold": gw.engine.settings.search.threshold},
    )


@router.get("/images/{image_id}", response_class=HTMLResponse)
async def image_page(
    request: Request, image_id: Annotated[int, PLAIN_ID, PathParam(ge=1, le=MAX_ID)]
) -> Response:
    page = Page(request, Action.VIEW_IMAGES)
    if page.stop is not None:
        return page.stop
    gw = gateway(request)
    try:
        record = await run_in_threadpool(gw.image, image_id)
    except FacesearchError as exc:
        return page.render("message.html", {"title": "Not found", "message": str(exc)}, 404)
    face = request.query_params.get("face", "")
    return page.render(
        "image.html",
        {"image": record, "face_id": int(face) if face.isdigit() else None},
    )


@router.get("/stats", response_class=HTMLResponse)
async def stats_page(request: Request) -> Response:
    page = Page(request, Action.STATS)
    if page.stop is not None:
        return page.stop
    gw = gateway(request)
    stats = await gw.locked(gw.engine.stats)
    stats.pop("home", None)
    return page.render("stats.html", {"stats": stats})


@router.get("/admin/keys", response_class=HTMLResponse)
async def keys_page(request: Request) -> Response:
    page = Page(request, Action.MANAGE_KEYS)
    if page.stop is not None:
        return page.stop
    return await _keys(page, None, "", 200)


async def _keys(page: Page, new_key: str | None, error: str, status: int) -> Response:
    keys = await run_in_threadpool(auth_state(page.request).store.list_keys)
    roles = [r.value for r in Role]
    return page.render(
        "keys.html", {"keys": keys, "roles": roles, "new_key": new_key, "error": error}, status
    )


@router.post("/admin/keys", response_class=HTMLResponse)
async def create_key(
    request: Request, csrf_token: str = Form(""), name: str = Form(""), role: str = Form("")
) -> Response:
    page = Page(request, Action.MANAGE_KEYS)
    if page.stop is not None:
        return page.stop
    if not page.form_ok(csrf_token):
        return await _keys(page, None, "Missing or wrong CSRF token: nothing was created.", 403)
    assert page.who is not None
    try:
        _, full = await new_key(request, page.who, name, role)
    except FacesearchError as exc:
        return await _keys(page, None, str(exc), 400)
    return await _keys(page, full, "", 201)


@router.post("/admin/keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_key(request: Request, key_id: str, csrf_token: str = Form("")) -> Response:
    page = Page(request, Action.MANAGE_KEYS)
    if page.stop is not None:
        return page.stop
    if not page.form_ok(csrf_token):
        return await _keys(page, None, "Missing or wrong CSRF token: nothing was revoked.", 403)
    assert page.who is not None
    try:
        await revoked_key(request, page.who, key_id)
    except FacesearchError as exc:
        return await _keys(page, None, str(exc), 404)
    return RedirectResponse("/admin/keys", status_code=303)
