"""The settings page: the editable settings, and the devices added, changed or removed one
at a time (the whole list is checked and saved each time)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from appliance.actions.config import DEVICE_KINDS
from appliance.web.context import WebContext
from appliance.web.deps import Ctx, PageForm, PageSession
from appliance.web.devices import GPIO_PINS, DeviceForm, reserved_pins
from appliance.web.operations import Invalid, save_settings
from appliance.web.pages import render
from appliance.web.settings import (
    DEVICES,
    FIELDS,
    ConfigConflict,
    config_to_raw,
    current_value,
    model_choices,
)

router = APIRouter(include_in_schema=False)


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
