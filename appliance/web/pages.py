"""The config page's HTML pages: pairing, status, "try it", logs and access.

Every page but /pair needs a paired browser (`PageSession`: else a redirect to /pair),
and every posted form the session's CSRF token (`PageForm`). The settings pages are in
pages_settings.py.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.responses import PlainTextResponse

from appliance.web.auth import csrf_token
from appliance.web.bodies import client_host, read_form
from appliance.web.context import WebContext
from appliance.web.deps import (
    PAIR_COOKIE,
    SESSION_COOKIE,
    Ctx,
    PageForm,
    PageSession,
    current_session,
    page_form,
    require_page_session,
    templates_of,
)
from appliance.web.names import device_name
from appliance.web.operations import ask
from appliance.web.pairing import announce_new_code
from appliance.web.status import CHART_STAGES, RAM_NOTES, status_snapshot

_LOGGER = logging.getLogger("appliance.web.app")  # the name its log lines have always had

router = APIRouter(include_in_schema=False)


def render(request: Request, ctx: WebContext, name: str, session: str | None,
           http_status: int = 200, **values: Any) -> HTMLResponse:  # fmt: skip
    """A page from its template, with what every page shows."""
    html = (
        templates_of(request)
        .get_template(name)
        .render(
            csrf=csrf_token(session) if session else "",
            notice=ctx.notice,
            device_name=device_name(ctx.config),
            path=request.url.path,
            **values,
        )
    )
    return HTMLResponse(html, status_code=http_status)


def set_cookie(ctx: WebContext, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="strict",
        secure=ctx.secure_cookies, path="/",
    )  # fmt: skip


def to_pair() -> RedirectResponse:
    return RedirectResponse("/pair", status_code=303)


# ---- pairing ----------------------------------------------------------------------------


@router.get("/pair")
async def pair_page(
    request: Request, ctx: Ctx, session: Annotated[str | None, Depends(current_session)]
) -> Response:
    if session:
        return RedirectResponse("/", status_code=303)
    nonce = secrets.token_urlsafe(24)
    response = render(request, ctx, "pair.html", None, pair_nonce=nonce, error="")
    set_cookie(ctx, response, PAIR_COOKIE, nonce, 600)
    return response


@router.post("/pair")
async def pair_submit(request: Request, ctx: Ctx) -> Response:
    form = await read_form(request)
    nonce = request.cookies.get(PAIR_COOKIE, "")
    if not nonce or not secrets.compare_digest(form.get("nonce", ""), nonce):
        raise HTTPException(403, "this form expired or came from another site; reload the page")
    client = client_host(request)
    wait = ctx.limiter.retry_after(client)
    if wait > 0:
        response = render(
            request, ctx, "pair.html", None, 429, pair_nonce=nonce,
            error=f"Too many wrong codes. Try again in {math.ceil(wait)} seconds.",
        )  # fmt: skip
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    if not ctx.pairing.check_code(form.get("code", "")[:64]):
        ctx.limiter.failed(client)
        _LOGGER.warning("wrong pairing code from %s", client)
        return render(
            request, ctx, "pair.html", None, 401, pair_nonce=nonce,
            error="That code is not right. The appliance spoke it at first start; "
            "`appliance pairing reset` makes a new one.",
        )  # fmt: skip
    session = ctx.pairing.new_session()
    _LOGGER.info("a browser at %s paired", client)
    response = RedirectResponse("/", status_code=303)
    set_cookie(ctx, response, SESSION_COOKIE, session, 30 * 86400)
    response.delete_cookie(PAIR_COOKIE, path="/")
    return response


@router.post("/logout", dependencies=[Depends(page_form)])
async def logout(ctx: Ctx, session: PageSession) -> Response:
    ctx.pairing.end_session(session)
    response = to_pair()
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ---- pages ------------------------------------------------------------------------------


@router.get("/")
async def status_page(request: Request, ctx: Ctx, session: PageSession) -> Response:
    snapshot = status_snapshot(ctx.tracker, ctx.config, root=ctx.sysroot,
                               started=ctx.started)  # fmt: skip
    return render(request, ctx, "status.html", session, s=snapshot, stages=CHART_STAGES,
                  ram_notes=RAM_NOTES)  # fmt: skip


@router.get("/try")
async def try_page(request: Request, ctx: Ctx, session: PageSession) -> Response:
    return render(request, ctx, "try.html", session, result=None,
                  limit_mb=ctx.upload_limit // (1024 * 1024))  # fmt: skip


@router.post("/try")
async def try_submit(request: Request, ctx: Ctx, session: PageSession, form: PageForm) -> Response:
    text = form.get("text", "").strip()[:2000]
    result = await ask(ctx, text) if text else None
    return render(request, ctx, "try.html", session, result=result,
                  limit_mb=ctx.upload_limit // (1024 * 1024))  # fmt: skip


@router.get("/logs")
async def logs_page(request: Request, ctx: Ctx, session: PageSession) -> Response:
    return render(request, ctx, "logs.html", session, lines=ctx.logs.lines(300))


@router.get("/logs/download", dependencies=[Depends(require_page_session)])
async def logs_download(ctx: Ctx) -> Response:
    text = "\n".join(line.text() for line in ctx.logs.lines()) + "\n"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return PlainTextResponse(
        text, headers={"Content-Disposition": f'attachment; filename="appliance-{stamp}.log"'}
    )


# ---- access: tokens and pairing -----------------------------------------------------------


@router.get("/access")
async def access_page(request: Request, ctx: Ctx, session: PageSession) -> Response:
    return render(request, ctx, "access.html", session, status=ctx.pairing.status(),
                  tokens=ctx.pairing.tokens(), new_token=None)  # fmt: skip


@router.post("/access/tokens")
async def token_create(
    request: Request, ctx: Ctx, session: PageSession, form: PageForm
) -> Response:
    name = " ".join(form.get("name", "").split())[:60] or "unnamed"
    secret, _ = ctx.pairing.new_token(name)
    _LOGGER.info("API token %r created", name)
    # The secret is shown once, on this response only (never logged, never stored).
    return render(request, ctx, "access.html", session, status=ctx.pairing.status(),
                  tokens=ctx.pairing.tokens(), new_token=secret)  # fmt: skip


@router.post("/access/tokens/revoke")
async def token_revoke(ctx: Ctx, form: PageForm) -> Response:
    ctx.pairing.revoke_token(form.get("id", "")[:32])
    return RedirectResponse("/access", status_code=303)


@router.post("/access/reset")
async def pairing_reset(
    request: Request, ctx: Ctx, session: PageSession, form: PageForm
) -> Response:
    if form.get("confirm") != "on":
        return render(request, ctx, "access.html", session, 400, status=ctx.pairing.status(),
                      tokens=ctx.pairing.tokens(), new_token=None,
                      problem="Tick the box to confirm the reset.")  # fmt: skip
    speaking = announce_new_code(ctx.pairing.reset(), ctx.announce, by="the config page")
    if speaking is not None:
        ctx.background.add(speaking)
        speaking.add_done_callback(ctx.background.discard)
    response = to_pair()
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
