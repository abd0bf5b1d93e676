"""Errors mapped to HTTP in one place, all answered with one envelope.

``{"error": {"code": ..., "message": ..., "request_id": ...}}`` for every 4xx and 5xx:
engine errors (by class), HTTP errors raised by routes, request validation errors and
anything unexpected (500, with the details only in the server log).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facesearch.errors import (
    BackendUnavailable,
    ConfigError,
    FacesearchError,
    InvalidInput,
    ModelMismatch,
    NoFaceFound,
    NotFound,
    PermissionDenied,
)

log = logging.getLogger("facesearch.api")

# Most specific first: NoFaceFound is an InvalidInput.
ENGINE_ERRORS: tuple[tuple[type[FacesearchError], int, str], ...] = (
    (NoFaceFound, 422, "no_face_found"),
    (InvalidInput, 400, "invalid_input"),
    (NotFound, 404, "not_found"),
    (PermissionDenied, 403, "forbidden"),
    (ModelMismatch, 409, "model_mismatch"),
    (BackendUnavailable, 503, "backend_unavailable"),
    (ConfigError, 500, "config_error"),
)

RETRY_AFTER_SECONDS = 10  # what a 503 (BackendUnavailable) tells clients to wait

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    """An HTTP answer decided by the API itself (auth, limits, content types)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def envelope(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    rid = request_id(request)
    body = {"error": {"code": code, "message": message, "request_id": rid}}
    out = dict(headers or {})
    if rid:
        out["X-Request-ID"] = rid
    return JSONResponse(body, status_code=status, headers=out)


def engine_status(exc: FacesearchError) -> tuple[int, str]:
    for cls, status, code in ENGINE_ERRORS:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return envelope(request, exc.status, exc.code, exc.message, exc.headers)

    async def on_engine_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FacesearchError)
        status, code = engine_status(exc)
        if status >= 500:
            log.error("request %s failed: %s", request_id(request), exc)
        # A store or index that is down (a server restarting) is worth trying again soon.
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
        return envelope(request, status, code, str(exc), headers)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = HTTP_CODES.get(exc.status_code, "error")
        headers: dict[str, Any] = dict(exc.headers or {})
        return envelope(request, exc.status_code, code, str(exc.detail), headers)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return envelope(request, 422, "invalid_request", _validation_message(exc))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s failed", request_id(request), exc_info=exc)
        return envelope(request, 500, "internal_error", "internal error; see the server log")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(FacesearchError, on_engine_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
