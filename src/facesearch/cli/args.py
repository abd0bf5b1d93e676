"""Argument types shared by every group of commands: numbers as plain digits only.

``int()`` takes `` 1``, ``+1`` and ``1_0`` (ten); an id typed as ``1.0`` or ``1_0`` is more
likely a mistake than a request for image 1 or 10, so these are refused.
"""

from __future__ import annotations

import argparse
import re

from facesearch.errors import InvalidInput

_DIGITS = re.compile(r"[0-9]+")


def whole(text: str) -> int:
    """A whole number (0 or more), as plain digits."""
    if not _DIGITS.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def record_id(text: str) -> int:
    """An image (or other record) id: plain digits, at least 1."""
    value = whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an id (ids start at 1)")
    return value


def id_list(text: str) -> list[int]:
    """Comma-separated ids, as ``--select 4,7,12`` takes them."""
    try:
        return [record_id(part.strip()) for part in text.split(",") if part.strip()]
    except argparse.ArgumentTypeError as exc:
        raise InvalidInput(f"--select: {exc}") from None


# The API's shape for a requester's place (api/routes_search.py): GB, FR, US-CA.
_JURISDICTION = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")


def jurisdiction(text: str) -> str:
    """An ISO 3166 code (``gb`` is taken as ``GB``), as the deployment's rules compare it."""
    code = text.strip().upper()
    if not _JURISDICTION.fullmatch(code):
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 3166 code such as GB or FR")
    return code
