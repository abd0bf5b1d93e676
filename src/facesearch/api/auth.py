"""Who is calling, and may they: API keys (Bearer), web sessions (cookie + CSRF), roles.

Routes declare the action they need with ``Depends(allow(Action.X))``. A session cookie
authenticates the web UI; every unsafe request made with it must carry the session's
CSRF token (``X-CSRF-Token`` header, or the ``csrf_token`` form field in the UI).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from facesearch.accounts import credentials as cred
from facesearch.accounts.ports import AccountStore, Session
from facesearch.accounts.ratelimit import TokenBuckets
from facesearch.accounts.roles import Action, Principal, Role
from facesearch.api.errors import ApiError
from facesearch.domain import Requester

SESSION_COOKIE = "fs_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANONYMOUS = Principal(kind="anonymous", id="anonymous", name="anonymous", role=Role.ADMIN)

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer KEY`.")
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="The web UI's session (sign in at /login)."
)


@dataclass
class AuthState:
    store: AccountStore
    enabled: bool
    search_limits: TokenBuckets
    ingest_limits: TokenBuckets
    session_hours: float
    secure_cookies: bool


def auth_state(request: Request) -> AuthState:
    state: AuthState = request.app.state.auth
    return state


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


def current_session(request: Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    return auth_state(request).store.session(token) if token else None


async def principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    cookie: str | None = Depends(session_cookie),
) -> Principal:
    auth = auth_state(request)
    if not auth.enabled:
        return ANONYMOUS
    header = request.headers.get("authorization")
    if header is not None:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise unauthorized("send the API key as 'Authorization: Bearer KEY'")
        found = auth.store.check_key(credentials.credentials)
        if found is None:
            raise unauthorized("unknown or revoked API key")
        return found
    if cookie:
        session = auth.store.session(cookie)
        if session is None:
            raise unauthorized("the session has ended; sign in again")
        if request.method not in SAFE_METHODS:
            sent = request.headers.get("x-csrf-token", "")
            if not sent or not cred.same(sent, session.csrf):
                raise ApiError(403, "csrf_failed", "missing or wrong CSRF token")
        return session.principal
    raise unauthorized("an API key is required: 'Authorization: Bearer KEY'")


def allow(action: Action) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets the call through only for roles allowed ``action``."""

    async def check(who: Principal = Depends(principal)) -> Principal:
        if not who.can(action):
            raise ApiError(403, "forbidden", f"the role '{who.role.value}' may not {action.value}")
        return who

    return check


def requester(who: Principal) -> Requester:
    """The caller as the engine's audit log names it."""
    return Requester(actor=f"{who.kind}:{who.id}", channel="api")


def rate_limit_search(request: Request, who: Principal) -> None:
    _take(auth_state(request).search_limits, caller_key(request, who), "searches")


def rate_limit_ingest(request: Request, who: Principal) -> None:
    _take(auth_state(request).ingest_limits, caller_key(request, who), "uploads")


def caller_key(request: Request, who: Principal) -> str:
    """Whose bucket a call spends: the key or user, or the client address with auth off."""
    if who.kind == "anonymous":
        return f"address:{request.client.host if request.client else 'unknown'}"
    return who.rate_key


def _take(buckets: TokenBuckets, caller: str, what: str) -> None:
    wait = buckets.take(caller)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiError(
            429,
            "rate_limited",
            f"too many {what}; try again in {seconds} s",
            {"Retry-After": str(seconds)},
        )
