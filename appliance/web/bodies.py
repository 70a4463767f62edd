"""Reading request bodies by hand (forms, uploads), each with a size limit."""

from __future__ import annotations

import urllib.parse

from fastapi import HTTPException, Request

FORM_LIMIT = 64 * 1024
"""The largest body of a form or a JSON request (uploads have their own limits)."""


async def read_body(request: Request, limit: int, *, too_large: str = "") -> bytes:
    """The request body, refused (413) as soon as it is larger than `limit`: a declared
    Content-Length is checked first, a chunked body while it streams in."""
    message = too_large or f"too large: at most {limit // (1024 * 1024) or 1} MiB"
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise HTTPException(413, message)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, message)
    return bytes(body)


async def read_form(request: Request) -> dict[str, str]:
    """A posted form (415 for another content type, 400 if not UTF-8)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(415, "expected a form (application/x-www-form-urlencoded)")
    raw = await read_body(request, FORM_LIMIT)
    try:
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise HTTPException(400, "the form is not UTF-8") from None
    return dict(pairs)  # the last value wins (a checkbox after its hidden "off")


def client_host(request: Request) -> str:
    return request.client.host if request.client else "unknown"
