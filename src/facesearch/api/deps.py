"""Small shared pieces of the routes: the gateway from the app, documented error answers."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BeforeValidator

from facesearch.api.gateway import Gateway
from facesearch.api.schemas import ErrorOut

MAX_ID = 2**62  # ids beyond what SQLite stores are not ids


def _digits_only(value: object) -> object:
    # pydantic's lax mode reads "1.0" as 1, "1_0" as 10 and "+1" as 1: an id is digits.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("an id is a whole number written in digits")
    return value


PLAIN_ID = BeforeValidator(_digits_only)

_ERRORS = {
    400: "Invalid input (a parameter, or a file that is not a usable image).",
    401: "No API key or session, or an unknown or revoked one.",
    403: "The caller's role may not do this, or the CSRF token is missing.",
    404: "No such thing (an id, or a source that is not registered).",
    413: "Upload over the size or pixel limit.",
    415: "The upload's content type is not an image.",
    422: "The request does not match this schema, or the probe holds no face.",
    429: "Too many searches or uploads: wait as long as Retry-After says.",
    503: "A store or index cannot be reached.",
}


def errors(
    *codes: int, extra: dict[int | str, dict[str, Any]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these error statuses, all with the one error envelope."""
    out: dict[int | str, dict[str, Any]] = dict(extra or {})
    out.update({c: {"model": ErrorOut, "description": _ERRORS[c]} for c in codes})
    return out


AUTH_ERRORS = (401, 403, 422)


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw
