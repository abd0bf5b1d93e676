"""Multipart forms with a photo that must never touch the disk (access requests, objections).

FastAPI's ``File()`` parameters go through Starlette's parser, whose uploads are
SpooledTemporaryFiles that roll over to a temporary file on disk above 1 MB. The routes
here declare no form parameters and read the form themselves, with a spool limit above
the largest body the server accepts, so the photo stays in memory from the socket to the
engine and is gone when the request ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from facesearch.api.uploads import FORM_ROOM, read_upload
from facesearch.errors import InvalidInput
from facesearch.imaging import DecodeLimits

FIELD_BYTES = 16 * 1024


@dataclass(frozen=True)
class PhotoForm:
    """The photo's bytes and the form's text fields."""

    photo: bytes = field(repr=False)
    fields: dict[str, str]

    def text(self, name: str, max_length: int = 500) -> str:
        value = self.fields.get(name, "").strip()
        if len(value) > max_length:
            raise InvalidInput(f"{name} is longer than {max_length} characters")
        return value

    def integer(self, name: str, low: int, high: int) -> int | None:
        value = self.text(name)
        if not value:
            return None
        try:
            number = int(value)
        except ValueError:
            raise InvalidInput(f"{name} must be a whole number") from None
        if not low <= number <= high:
            raise InvalidInput(f"{name} must be between {low} and {high}")
        return number

    def number(self, name: str, low: float, high: float) -> float | None:
        value = self.text(name)
        if not value:
            return None
        try:
            number = float(value)
        except ValueError:
            raise InvalidInput(f"{name} must be a number") from None
        if not low <= number <= high:
            raise InvalidInput(f"{name} must be between {low} and {high}")
        return number


async def read_photo_form(request: Request, limits: DecodeLimits) -> PhotoForm:
    """The form's ``image`` (checked like every upload) and fields, all in memory."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise InvalidInput("send a multipart/form-data form with the photo in the field 'image'")
    parser = MultiPartParser(
        request.headers, request.stream(), max_files=1, max_fields=20, max_part_size=FIELD_BYTES
    )
    # Larger than any body the server lets through: the upload never rolls over to disk.
    parser.spool_max_size = limits.max_bytes + FORM_ROOM + 1
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidInput(f"the form cannot be read: {exc.message}") from None
    try:
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("send the photo in the form field 'image'")
        photo = await read_upload(upload, limits)
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    finally:
        await form.close()
    return PhotoForm(photo=photo, fields=fields)


def photo_form_schema(required: tuple[str, ...] = (), **fields: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of such a form (the route reads it itself)."""
    schema = {
        "type": "object",
        "required": ["image", *required],
        "properties": {"image": {"type": "string", "format": "binary"}, **fields},
    }
    body = {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    return {"requestBody": body}


FACE_FIELD: dict[str, Any] = {
    "type": "integer",
    "minimum": 0,
    "maximum": 10_000,
    "description": "Which face of the photo (0, the largest, by default).",
}
