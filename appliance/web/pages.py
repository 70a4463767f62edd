"""The config page's HTML pages: pairing, status, settings, "try it", logs and access.

Every page but /pair needs a paired browser (`PageSession`: else a redirect to /pair),
and every posted form the session's CSRF token (`PageForm`).
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

from appliance.config import AppConfig
from appliance.sections.devices import DEVICE_KINDS
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
from appliance.web.devices import GPIO_PINS, DeviceForm, reserved_pins
from appliance.web.names import device_name
from appliance.web.operations import Invalid, ask, save_settings
from appliance.web.pairing import announce_new_code
from appliance.web.settings import (
    DEVICES,
    FIELDS,
    ConfigConflict,
    config_to_raw,
    current_value,
    model_choices,
)
from appliance.web.status import CHART_STAGES, RAM_NOTES, status_snapshot

_LOGGER = logging.getLogger("appliance.web.app")  # the name its log lines have always had

router = APIRouter(include_in_schema=False)


def render(request: Request, ctx: WebContext, name: str, session: str | None,
           http_status: int = 200, **values: Any) -> HTMLResponse:  # fmt: skip
    """A page from its template, with what every page shows."""
    template = templates_of(request).get_template(name)
    html = template.render(
        csrf=csrf_token(session) if session else "",
        notice=ctx.notice,
        device_name=device_name(ctx.config),
        path=request.url.path,
        **values,
    )
    return HTMLResponse(html, status_code=http_status)


def set_cookie(ctx: WebContext, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="strict",
        secure=ctx.secure_cookies, path="/",
    )  # fmt: skip


def to_pair() -> RedirectResponse:
    return RedirectResponse("/pair", status_code=303)


# ---- pairing -----------------------------------------------------------------------------


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
    tried = ctx.pairing.try_code(form.get("code", "")[:64])
    if tried == "expired":
        minutes = f"{ctx.pairing.code_minutes:g}"
        return render(
            request, ctx, "pair.html", None, 401, pair_nonce=nonce,
            error=f"The pairing code has expired: a code lets browsers in for {minutes} "
            "minutes after it is made. For a new one, restart the appliance (while no "
            "browser is paired it says a new code), hold its button, or run "
            "`appliance pairing new-code` on it.",
        )  # fmt: skip
    if tried != "ok":
        ctx.limiter.failed(client)
        _LOGGER.warning("wrong pairing code from %s", client)
        return render(
            request, ctx, "pair.html", None, 401, pair_nonce=nonce,
            error="That code is not right. The appliance says it when it starts unpaired; "
            "`appliance pairing new-code` makes a new one.",
        )  # fmt: skip
    ctx.limiter.succeeded(client)
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


# ---- pages -------------------------------------------------------------------------------


@router.get("/")
async def status_page(request: Request, ctx: Ctx, session: PageSession) -> Response:
    snapshot = status_snapshot(ctx.tracker, ctx.config, root=ctx.sysroot,
                               started=ctx.started)  # fmt: skip
    return render(request, ctx, "status.html", session, s=snapshot, stages=CHART_STAGES,
                  ram_notes=RAM_NOTES, ha_key=made_key(ctx.config))  # fmt: skip


def made_key(config: AppConfig) -> str | None:
    """The native API key made on first start, for a paired browser to give Home
    Assistant (shown on the page, never over the token API; a key set in the config is
    the owner's own and is not shown)."""
    satellite = config.satellite
    if not satellite.enabled or satellite.plaintext or satellite.encryption_key:
        return None
    from appliance.satellite.keys import stored_key

    return stored_key()


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


# ---- settings: the editable settings, and devices one at a time --------------------------


def settings_rows(
    ctx: WebContext, values: dict[str, Any], errors: dict[str, str]
) -> list[dict[str, Any]]:
    rows = []
    for item in FIELDS:
        value = values.get(item.name, current_value(ctx.config, item))
        rows.append({
            "field": item,
            # A secret is write-only: never put back into the page, not even on a 422.
            "value": "" if item.kind == "secret" else value,
            "stored": item.kind == "secret" and bool(current_value(ctx.config, item)),
            "error": errors.get(item.name, ""),
            "choices": model_choices(ctx.config, item.role) if item.kind == "choice" else [],
        })  # fmt: skip
    return rows


def devices_now(ctx: WebContext) -> list[dict[str, Any]]:
    return config_to_raw(ctx.config)[DEVICES]


def settings_view(request: Request, ctx: WebContext, session: str, http_status: int = 200, *,
                  values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                  version: str | None = None, saved: Any = None, problem: str = "",
                  device: DeviceForm | None = None, device_errors: dict[str, str] | None = None,
                  editing: str = "") -> HTMLResponse:  # fmt: skip
    return render(
        request, ctx, "settings.html", session, http_status,
        rows=settings_rows(ctx, values or {}, errors or {}),
        version=ctx.store.version() if version is None else version,
        saved=saved, problem=problem, devices=devices_now(ctx),
        device=device or DeviceForm.of({}), device_errors=device_errors or {},
        editing=editing, kinds=DEVICE_KINDS, gpio_pins=GPIO_PINS,
        reserved=reserved_pins(ctx.config.actions), broker=ctx.config.mqtt.host,
    )  # fmt: skip


@router.get("/settings")
async def settings_page(request: Request, ctx: Ctx, session: PageSession) -> Response:
    editing = request.query_params.get("edit", "")[:200]
    found = [d for d in devices_now(ctx) if d["name"] == editing]
    if found:
        return settings_view(request, ctx, session, device=DeviceForm.of(found[0]),
                             editing=editing)  # fmt: skip
    return settings_view(request, ctx, session)


@router.post("/settings")
async def settings_submit(
    request: Request, ctx: Ctx, session: PageSession, form: PageForm
) -> Response:
    submitted = {item.name: form[item.name] for item in FIELDS if item.name in form}
    try:
        report = await save_settings(ctx, submitted, form.get("version", ""))
    except Invalid as bad:
        return settings_view(
            request, ctx, session, 422, values=submitted, errors=bad.errors,
            version=form.get("version", ""),
            problem="Nothing was saved: fix the fields marked below.",
        )  # fmt: skip
    except ConfigConflict as err:
        return settings_view(request, ctx, session, 409, problem=str(err))
    return settings_view(request, ctx, session, saved=report)


@router.post("/settings/devices")
async def devices_submit(
    request: Request, ctx: Ctx, session: PageSession, form: PageForm
) -> Response:
    """Add, change or remove one device; the whole list is checked and saved."""
    action, original = form.get("action", ""), form.get("original", "")[:200]
    tables = devices_now(ctx)
    index = next((i for i, d in enumerate(tables) if d["name"] == original), None)
    device = DeviceForm.from_form(form)
    typing_errors: dict[str, str] = {}
    if action in ("edit", "remove") and index is None:
        return settings_view(request, ctx, session, 409, problem=(
            f"There is no device called {original[:60]!r} any more (changed elsewhere?). "
            "Nothing was saved: reload the page."))  # fmt: skip
    if action == "remove":
        assert index is not None
        tables.pop(index)
    elif action in ("add", "edit"):
        table, typing_errors = device.table(tables[index] if index is not None else None)
        if index is None:
            tables.append(table)
            index = len(tables) - 1
        else:
            tables[index] = table
    else:
        raise HTTPException(400, "unknown action")
    editing = original if action == "edit" else ""
    problem = "Nothing was saved: fix the device's fields marked below."
    if typing_errors:
        return settings_view(request, ctx, session, 422, version=form.get("version", ""),
                             problem=problem, device=device, device_errors=typing_errors,
                             editing=editing)  # fmt: skip
    try:
        report = await save_settings(ctx, {}, form.get("version", ""), tables)
    except Invalid as bad:
        mine = f"{DEVICES}[{index}]."
        device_errors = {
            k.removeprefix(mine): v for k, v in bad.errors.items() if k.startswith(mine)
        }
        others = [v for k, v in bad.errors.items() if not k.startswith(mine)]
        if others:
            problem += " " + " ".join(others)
        return settings_view(request, ctx, session, 422, version=form.get("version", ""),
                             problem=problem, device=device, device_errors=device_errors,
                             editing=editing)  # fmt: skip
    except ConfigConflict as err:
        return settings_view(request, ctx, session, 409, problem=str(err))
    return settings_view(request, ctx, session, saved=report)


# ---- access: tokens and pairing ----------------------------------------------------------


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
