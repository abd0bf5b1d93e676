"""Opaque pagination cursors: base64url JSON, checked on the way back in."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from facesearch.errors import InvalidInput


def encode(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, field: str, kind: type) -> Any:
    """The cursor's ``field`` (of type ``kind``), or None for the first page."""
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("invalid cursor: pass next_cursor from a previous page") from None
    value = data.get(field) if isinstance(data, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidInput("invalid cursor: pass next_cursor from a previous page")
    return value
