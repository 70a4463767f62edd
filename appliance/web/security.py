"""Pure ASGI middlewares (streamed responses such as the event stream pass straight
through): security headers on every response, request body limits, and the API answering
only authenticated callers."""

from __future__ import annotations

from typing import Any

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


class SecurityHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in HEADERS if h[0] not in present]
                if not static and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Refuse request bodies over a size (413) before they are read into memory: a
    declared Content-Length at once, a chunked body as soon as it passes the limit.
    Uploads (`large_paths`) get `large` bytes, every other request `small`."""

    def __init__(self, app: Any, *, small: int, large: int, large_paths: tuple[str, ...]) -> None:
        self.app = app
        self.small = small
        self.large = large
        self.large_paths = large_paths

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.large if scope.get("path", "") in self.large_paths else self.small
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, limit)
            return
        seen = 0
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _too_large(send, limit)


class _TooLarge(Exception):
    pass


async def _too_large(send: Any, limit: int) -> None:
    body = (
        '{"detail": "request body too large: at most %d bytes"}' % limit  # noqa: UP031
    ).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class RequireAuth:
    """The API and its description answer only a paired browser or a bearer token: 401
    before anything of the request is read or checked, so an unpaired client learns
    nothing of the API (not even that its body was wrong). The routes check again, with
    their CSRF rule for changes."""

    PROTECTED = ("/api/", "/openapi.json")

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(self.PROTECTED):
            from fastapi import HTTPException
            from starlette.requests import Request
            from starlette.responses import JSONResponse

            from appliance.web.deps import authorise

            try:
                authorise(Request(scope), scope["app"].state.ctx, unsafe=False)
            except HTTPException as refused:
                response = JSONResponse({"detail": refused.detail}, refused.status_code,
                                        headers=refused.headers)  # fmt: skip
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
