"""The FastAPI application: pages (server-rendered), the JSON API and the event stream.

Authentication: a browser pairs once with the spoken code and gets a session cookie
(HttpOnly, SameSite=Strict); scripts use a bearer token created on the Access page.
Every state-changing request from a browser session carries the session's CSRF token
(a form field, or the X-CSRF-Token header for the page's own fetch calls).

The routes are in pages.py and api.py; the checks they share are
dependencies in deps.py.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from appliance.web import api, pages
from appliance.web.bodies import FORM_LIMIT
from appliance.web.context import WebContext
from appliance.web.deps import PairFirst, context_of, templates_of
from appliance.web.names import device_name
from appliance.web.security import BodyLimit, RequireAuth, SecurityHeaders

HERE = Path(__file__).parent
API_VERSION = "1"


def create_app(ctx: WebContext) -> FastAPI:
    app = FastAPI(
        title="Voice appliance",
        version=API_VERSION,
        description="The local API of the offline voice appliance. Authenticate with "
        "`Authorization: Bearer <token>` (create one on the Access page). This description "
        "itself is served only to a paired browser or a bearer token.",
        docs_url=None,
        redoc_url=None,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.ctx = ctx  # the routes' Ctx (deps.web_context)
    app.state.templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
    )
    app.include_router(pages.router)
    app.include_router(api.router)
    if ctx.test_endpoints:
        from appliance.web import debug

        app.include_router(debug.router)
    app.add_exception_handler(HTTPException, http_problem)  # type: ignore[arg-type]
    app.add_exception_handler(PairFirst, pair_first)
    app.add_middleware(BodyLimit, small=FORM_LIMIT, large=ctx.upload_limit,
                       large_paths=("/api/listen", "/api/vision"))  # fmt: skip
    app.add_middleware(RequireAuth)  # before the body is read: 401, not 413 or 422
    app.add_middleware(SecurityHeaders)
    return app


async def http_problem(request: Request, exc: HTTPException) -> Response:
    """An error as the error page for a browser's page, else as JSON {"detail": …}."""
    wants_html = "text/html" in request.headers.get("accept", "") and not \
        request.url.path.startswith("/api/")  # fmt: skip
    if wants_html:
        ctx = context_of(request)
        html = templates_of(request).get_template("error.html").render(
            status=exc.status_code, detail=str(exc.detail), notice="", csrf="",
            device_name=device_name(ctx.config), path="",
        )  # fmt: skip
        return HTMLResponse(html, status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                        headers=exc.headers)  # fmt: skip


async def pair_first(request: Request, exc: Exception) -> Response:
    """A page asked for without a session (PairFirst): the redirect to pairing."""
    return pages.to_pair()
