"""The FastAPI application: pages (server-rendered), the JSON API and the event stream.

Authentication: a browser pairs once with the spoken code and gets a session cookie
(HttpOnly, SameSite=Strict); scripts use a bearer token created on the Access page.
Every state-changing request from a browser session carries the session's CSRF token
(a form field, or the X-CSRF-Token header for the page's own fetch calls).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import secrets
import time
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.responses import PlainTextResponse, StreamingResponse

from appliance import events as ev
from appliance.actions.config import DEVICE_KINDS
from appliance.errors import ApplianceError, AudioInputError
from appliance.vision.intents import look_kind
from appliance.web.auth import csrf_token
from appliance.web.context import WebContext
from appliance.web.devices import GPIO_PINS, DeviceForm, reserved_pins
from appliance.web.live import apply_changes
from appliance.web.names import device_name
from appliance.web.pairing import PAIRING_ANNOUNCEMENT, announce_new_code
from appliance.web.schemas import (
    PROBLEMS,
    AskRequest,
    AskResponse,
    ConfigIn,
    ConfigOut,
    ConfigSaved,
    ControlOut,
    ListenResponse,
    MuteIn,
    Problem,
    VisionCapture,
    VisionOut,
)
from appliance.web.settings import (
    DEVICES,
    FIELDS,
    ConfigConflict,
    config_to_raw,
    current_value,
    model_choices,
    public_config,
)
from appliance.web.status import CHART_STAGES, RAM_NOTES, status_snapshot

_LOGGER = logging.getLogger(__name__)
HERE = Path(__file__).parent
SESSION_COOKIE = "appliance_session"
PAIR_COOKIE = "appliance_pair"
API_VERSION = "1"
FORM_LIMIT = 64 * 1024


# ---- helpers -----------------------------------------------------------------------------


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _turn_out(result: Any) -> dict[str, Any]:
    return {
        "turn": result.turn,
        "outcome": result.outcome,
        "transcript": result.transcript,
        "reply": result.reply,
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        "errors": list(result.errors),
    }


async def _read_body(request: Request, limit: int, *, too_large: str = "") -> bytes:
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


async def _form(request: Request) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(415, "expected a form (application/x-www-form-urlencoded)")
    raw = await _read_body(request, FORM_LIMIT)
    try:
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise HTTPException(400, "the form is not UTF-8") from None
    return dict(pairs)  # the last value wins (a checkbox after its hidden "off")


class _Invalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid settings")
        self.errors = errors


def create_app(ctx: WebContext) -> FastAPI:
    app = FastAPI(
        title="Voice appliance",
        version=API_VERSION,
        description="The local API of the offline voice appliance. Authenticate with "
        "`Authorization: Bearer <token>` (create one on the Access page).",
        docs_url=None,
        redoc_url=None,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
    )

    # ---- authentication --------------------------------------------------------------

    def session_of(request: Request) -> str | None:
        token = request.cookies.get(SESSION_COOKIE)
        return token if token and ctx.pairing.session_valid(token) else None

    def authorise(request: Request, *, unsafe: bool) -> str | None:
        """The session (None for a bearer token); raises 401/403."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            if ctx.pairing.token_valid(header[7:].strip()):
                return None
            raise HTTPException(401, "invalid API token", headers={"WWW-Authenticate": "Bearer"})
        session = session_of(request)
        if session is None:
            raise HTTPException(
                401, "pair this browser first, or send a bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        if unsafe and not secrets.compare_digest(
            request.headers.get("x-csrf-token", ""), csrf_token(session)
        ):
            raise HTTPException(403, "missing or wrong X-CSRF-Token header")
        return session

    def check_form_csrf(session: str, form: dict[str, str]) -> None:
        if not secrets.compare_digest(form.get("csrf", ""), csrf_token(session)):
            raise HTTPException(403, "this form expired or came from another site; reload the page")

    def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="strict",
            secure=ctx.secure_cookies, path="/",
        )  # fmt: skip

    def render(name: str, request: Request, session: str | None, http_status: int = 200,
               **values: Any) -> HTMLResponse:  # fmt: skip
        html = templates.get_template(name).render(
            csrf=csrf_token(session) if session else "",
            notice=ctx.notice,
            device_name=device_name(ctx.config),
            path=request.url.path,
            **values,
        )
        return HTMLResponse(html, status_code=http_status)

    def to_pair() -> RedirectResponse:
        return RedirectResponse("/pair", status_code=303)

    # ---- pairing ----------------------------------------------------------------------

    @app.get("/pair", include_in_schema=False)
    async def pair_page(request: Request) -> Response:
        if session_of(request):
            return RedirectResponse("/", status_code=303)
        nonce = secrets.token_urlsafe(24)
        response = render("pair.html", request, None, pair_nonce=nonce, error="")
        set_cookie(response, PAIR_COOKIE, nonce, 600)
        return response

    @app.post("/pair", include_in_schema=False)
    async def pair_submit(request: Request) -> Response:
        form = await _form(request)
        nonce = request.cookies.get(PAIR_COOKIE, "")
        if not nonce or not secrets.compare_digest(form.get("nonce", ""), nonce):
            raise HTTPException(403, "this form expired or came from another site; reload the page")
        client = _client(request)
        wait = ctx.limiter.retry_after(client)
        if wait > 0:
            response = render(
                "pair.html", request, None, 429, pair_nonce=nonce,
                error=f"Too many wrong codes. Try again in {math.ceil(wait)} seconds.",
            )  # fmt: skip
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        if not ctx.pairing.check_code(form.get("code", "")[:64]):
            ctx.limiter.failed(client)
            _LOGGER.warning("wrong pairing code from %s", client)
            return render(
                "pair.html", request, None, 401, pair_nonce=nonce,
                error="That code is not right. The appliance spoke it at first start; "
                "`appliance pairing reset` makes a new one.",
            )  # fmt: skip
        session = ctx.pairing.new_session()
        _LOGGER.info("a browser at %s paired", client)
        response = RedirectResponse("/", status_code=303)
        set_cookie(response, SESSION_COOKIE, session, 30 * 86400)
        response.delete_cookie(PAIR_COOKIE, path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_pair()
        check_form_csrf(session, await _form(request))
        ctx.pairing.end_session(session)
        response = to_pair()
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # ---- pages ------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def status_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_pair()
        snapshot = status_snapshot(ctx.tracker, ctx.config, root=ctx.sysroot,
                                   started=ctx.started)  # fmt: skip
        return render("status.html", request, session, s=snapshot, stages=CHART_STAGES,
                      ram_notes=RAM_NOTES)  # fmt: skip

    def settings_rows(values: dict[str, Any], errors: dict[str, str]) -> list[dict[str, Any]]:
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

    def devices_now() -> list[dict[str, Any]]:
        return config_to_raw(ctx.config)[DEVICES]

    def settings_view(request: Request, session: str, http_status: int = 200, *,
                      values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                      version: str | None = None, saved: Any = None, problem: str = "",
                      device: DeviceForm | None = None, device_errors: dict[str, str] | None = None,
                      editing: str = "") -> HTMLResponse:  # fmt: skip
        return render(
            "settings.html", request, session, http_status,
            rows=settings_rows(values or {}, errors or {}),
            version=ctx.store.version() if version is None else version,
            saved=saved, problem=problem, devices=devices_now(),
            device=device or DeviceForm.of({}), device_errors=device_errors or {},
            editing=editing, kinds=DEVICE_KINDS, gpio_pins=GPIO_PINS,
            reserved=reserved_pins(ctx.config.actions), broker=ctx.config.mqtt.host,
        )  # fmt: skip

    @app.get("/settings", include_in_schema=False)
    async def settings_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_pair()
        editing = request.query_params.get("edit", "")[:200]
        found = [d for d in devices_now() if d["name"] == editing]
        if found:
            return settings_view(request, session, device=DeviceForm.of(found[0]),
                                 editing=editing)  # fmt: skip
        return settings_view(request, session)

    @app.post("/settings", include_in_schema=False)
    async def settings_submit(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_pair()
        form = await _form(request)
        check_form_csrf(session, form)
        submitted = {item.name: form[item.name] for item in FIELDS if item.name in form}
        try:
            report = await save_settings(submitted, form.get("version", ""))
        except _Invalid as bad:
            return settings_view(
                request, session, 422, values=submitted, errors=bad.errors,
                version=form.get("version", ""),
                problem="Nothing was saved: fix the fields marked below.",
            )  # fmt: skip
        except ConfigConflict as err:
            return settings_view(request, session, 409, problem=str(err))
        return settings_view(request, session, saved=report)

    @app.post("/settings/devices", include_in_schema=False)
    async def devices_submit(request: Request) -> Response:
        """Add, change or remove one device; the whole list is checked and saved."""
        session = session_of(request)
        if session is None:
            return to_pair()
        form = await _form(request)
        check_form_csrf(session, form)
        action, original = form.get("action", ""), form.get("original", "")[:200]
        tables = devices_now()
        index = next((i for i, d in enumerate(tables) if d["name"] == original), None)
        device = DeviceForm.from_form(form)
        typing_errors: dict[str, str] = {}
        if action in ("edit", "remove") and index is None:
            return settings_view(request, session, 409, problem=(
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
            return settings_view(request, session, 422, version=form.get("version", ""),
                                 problem=problem, device=device, device_errors=typing_errors,
                                 editing=editing)  # fmt: skip
        try:
            report = await save_settings({}, form.get("version", ""), tables)
        except _Invalid as bad:
            mine = f"{DEVICES}[{index}]."
            device_errors = {
                k.removeprefix(mine): v for k, v in bad.errors.items() if k.startswith(mine)
            }
            others = [v for k, v in bad.errors.items() if not k.startswith(mine)]
            if others:
                problem += " " + " ".join(others)
            return settings_view(request, session, 422, version=form.get("version", ""),
                                 problem=problem, device=device, device_errors=device_errors,
                                 editing=editing)  # fmt: skip
        except ConfigConflict as err:
            return settings_view(request, session, 409, problem=str(err))
        return settings_view(request, session, saved=report)

    @app.get("/try", include_in_schema=False)
    async def try_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_pair()
        return render("try.html", request, session, result=None,
                      limit_mb=ctx.upload_limit // (1024 * 1024))  # fmt: skip

    @app.post("/try", include_in_schema=False)
    async def try_submit(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_pair()
        form = await _form(request)
        check_form_csrf(session, form)
        text = form.get("text", "").strip()[:2000]
        result = await ask(text) if text else None
        return render("try.html", request, session, result=result,
                      limit_mb=ctx.upload_limit // (1024 * 1024))  # fmt: skip

    @app.get("/logs", include_in_schema=False)
    async def logs_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_pair()
        return render("logs.html", request, session, lines=ctx.logs.lines(300))

    @app.get("/logs/download", include_in_schema=False)
    async def logs_download(request: Request) -> Response:
        if session_of(request) is None:
            return to_pair()
        text = "\n".join(line.text() for line in ctx.logs.lines()) + "\n"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return PlainTextResponse(
            text, headers={"Content-Disposition": f'attachment; filename="appliance-{stamp}.log"'}
        )

    @app.get("/access", include_in_schema=False)
    async def access_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_pair()
        return render("access.html", request, session, status=ctx.pairing.status(),
                      tokens=ctx.pairing.tokens(), new_token=None)  # fmt: skip

    @app.post("/access/tokens", include_in_schema=False)
    async def token_create(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_pair()
        form = await _form(request)
        check_form_csrf(session, form)
        name = " ".join(form.get("name", "").split())[:60] or "unnamed"
        secret, _ = ctx.pairing.new_token(name)
        _LOGGER.info("API token %r created", name)
        # The secret is shown once, on this response only (never logged, never stored).
        return render("access.html", request, session, status=ctx.pairing.status(),
                      tokens=ctx.pairing.tokens(), new_token=secret)  # fmt: skip

    @app.post("/access/tokens/revoke", include_in_schema=False)
    async def token_revoke(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_pair()
        form = await _form(request)
        check_form_csrf(session, form)
        ctx.pairing.revoke_token(form.get("id", "")[:32])
        return RedirectResponse("/access", status_code=303)

    @app.post("/access/reset", include_in_schema=False)
    async def pairing_reset(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_pair()
        form = await _form(request)
        check_form_csrf(session, form)
        if form.get("confirm") != "on":
            return render("access.html", request, session, 400, status=ctx.pairing.status(),
                          tokens=ctx.pairing.tokens(), new_token=None,
                          problem="Tick the box to confirm the reset.")  # fmt: skip
        speaking = announce_new_code(ctx.pairing.reset(), ctx.announce, by="the config page")
        if speaking is not None:
            ctx.background.add(speaking)
            speaking.add_done_callback(ctx.background.discard)
        response = to_pair()
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # ---- the API ----------------------------------------------------------------------

    async def save_settings(
        values: dict[str, Any], version: str, devices: list[Any] | None = None
    ) -> Any:
        typed, errors = ctx.store.validate(ctx.config, values, devices)
        if errors:
            raise _Invalid(errors)
        saved = ctx.store.save(ctx.config, typed, version)
        ctx.config = saved.config
        report = apply_changes(ctx.live, saved.config, saved.changed)
        for line in (*report.applied, *report.restart):
            _LOGGER.info("settings: %s", line)
        return report

    async def ask(text: str) -> dict[str, Any]:
        if ctx.pipeline is None:
            raise HTTPException(503, "the engines are not loaded; try again when ready")
        ctx.tracker.expect_typed(text)
        result = await ctx.pipeline.ask(text)
        return _turn_out(result)

    @app.post("/api/ask", response_model=AskResponse, tags=["api"],
              responses={**PROBLEMS, 503: {"model": Problem}})  # fmt: skip
    async def api_ask(request: Request, body: Annotated[AskRequest, Body()]) -> dict[str, Any]:
        """A typed request: the reply (spoken by the appliance too), optionally as audio."""
        authorise(request, unsafe=True)
        out = await ask(body.text.strip())
        out["audio_wav_base64"] = None
        if body.audio and out["reply"]:
            from appliance.audio.wav import wav_bytes

            tts = ctx.pipeline.engines.tts
            audio = await ctx.pipeline.in_stage("tts", tts.synthesize, out["reply"])
            out["audio_wav_base64"] = base64.b64encode(wav_bytes(audio, tts.sample_rate)).decode()
        return out

    @app.post(
        "/api/listen",
        response_model=ListenResponse,
        tags=["api"],
        responses={**PROBLEMS, 400: {"model": Problem}, 413: {"model": Problem},
                   503: {"model": Problem}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "audio/wav": {"schema": {"type": "string", "format": "binary"}}}}},
    )  # fmt: skip
    async def api_listen(request: Request) -> dict[str, Any]:
        """A WAV recording (any PCM format) run through the pipeline as if heard by the
        microphone: wake word, then the request. At most 20 MiB."""
        authorise(request, unsafe=True)
        if ctx.pipeline is None:
            raise HTTPException(503, "the engines are not loaded; try again when ready")
        data = await _read_body(request, ctx.upload_limit)
        from appliance.audio.format import PIPELINE_RATE, float_to_int16, resample, to_mono
        from appliance.audio.sinks import RecordingSink
        from appliance.audio.sources import ArraySource
        from appliance.audio.wav import parse_wav

        try:
            wav = parse_wav(data, "the upload")
        except AudioInputError as err:
            raise HTTPException(400, str(err)) from None
        samples = float_to_int16(resample(to_mono(wav.samples), wav.info.rate, PIPELINE_RATE))
        try:
            results = await ctx.pipeline.run_recording(ArraySource(samples), RecordingSink())
        except ApplianceError as err:
            raise HTTPException(503, str(err)) from None
        message = "" if results else (
            "No wake word heard: the recording must start with the wake word "
            f"(\"{ctx.config.wake.model.replace('_', ' ')}\") before the request."
        )  # fmt: skip
        return {"turns": [_turn_out(r) for r in results], "message": message}

    vision_body = {
        "required": True,
        "content": {
            "application/json": {"schema": VisionCapture.model_json_schema()},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
        },
    }

    @app.post(
        "/api/vision",
        response_model=VisionOut,
        tags=["api"],
        responses={**PROBLEMS, 413: {"model": Problem}, 415: {"model": Problem},
                   422: {"model": Problem}, 503: {"model": Problem}},
        openapi_extra={"requestBody": vision_body},
    )  # fmt: skip
    async def api_vision(
        request: Request,
        question: Annotated[str, Query(max_length=1000)] = "",
        kind: Literal["read", "describe"] | None = None,
        speak: bool = False,
    ) -> dict[str, Any]:
        """Look once. Either an image (`Content-Type: image/jpeg`, `image/png` or another
        image type; at most `vision.max_image_bytes`), with `question`, `kind` and `speak`
        in the query string; or JSON `{"capture": true, "question": "read this"}` to take
        a picture with the camera now. Returns the answer, the backend and what OCR read."""
        authorise(request, unsafe=True)
        vision = ctx.vision
        if vision is None:
            raise HTTPException(
                503, "vision is off: no camera is configured or found (set vision.camera; "
                "see docs/vision.md)",
            )  # fmt: skip
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        image: bytes | None = None
        if media == "application/json":
            raw = await _read_body(request, FORM_LIMIT)
            try:
                body = VisionCapture.model_validate_json(raw)
            except ValidationError as err:
                details = err.errors(include_url=False, include_context=False, include_input=False)
                raise HTTPException(422, details) from None
            question, kind, speak = body.question, body.kind, body.speak
        elif media.startswith("image/") or media == "application/octet-stream":
            limit = vision.config.max_image_bytes
            image = await _read_body(
                request, limit, too_large=f"the image is larger than {limit} bytes "
                "(vision.max_image_bytes): send a smaller or more compressed one",
            )  # fmt: skip
        else:
            raise HTTPException(415, "send an image (Content-Type: image/jpeg, image/png, …) "
                                "or JSON {\"capture\": true}")  # fmt: skip
        if any(ord(c) < 32 and c not in "\t\n\r" for c in question):
            raise HTTPException(422, "the question contains control characters")
        question = " ".join(question.split())
        chosen = kind or look_kind(question)
        answer = await vision.look("describe" if chosen == "describe" else "read",
                                   image=image, question=question)  # fmt: skip
        if answer.problem == "image_too_large":
            raise HTTPException(413, answer.text)
        if answer.problem == "image":
            raise HTTPException(422, answer.text)
        if answer.problem == "camera":
            raise HTTPException(503, answer.text)
        say = getattr(ctx.pipeline, "say", None)
        if speak and say is not None:
            speaking = asyncio.ensure_future(say(answer.text))
            ctx.background.add(speaking)
            speaking.add_done_callback(ctx.background.discard)
        return {
            "kind": answer.kind, "text": answer.text, "backend": answer.backend,
            "lines": list(answer.lines), "problem": answer.problem,
            "seconds": answer.seconds, "capture_seconds": answer.capture_seconds,
        }  # fmt: skip

    @app.get("/api/status", tags=["api"], responses=PROBLEMS)
    async def api_status(request: Request) -> dict[str, Any]:
        """State, models and their RAM, CPU temperature and load, memory and zram, the
        recent turns with per-stage latency, and errors."""
        authorise(request, unsafe=False)
        snapshot = status_snapshot(ctx.tracker, ctx.config, root=ctx.sysroot,
                                   started=ctx.started)  # fmt: skip
        return {**snapshot, "notice": ctx.notice}

    @app.get("/api/config", response_model=ConfigOut, tags=["api"], responses=PROBLEMS)
    async def api_config(request: Request, response: Response) -> dict[str, Any]:
        """The settings in effect, the editable fields, and the version to send back."""
        authorise(request, unsafe=False)
        version = ctx.store.version()
        response.headers["ETag"] = f'"{version}"'
        editable = [
            {"name": f.name, "label": f.label, "kind": f.kind, "live": f.live,
             "group": f.group,
             "choices": model_choices(ctx.config, f.role) if f.kind == "choice" else [],
             **({"stored": bool(current_value(ctx.config, f))} if f.kind == "secret" else {})}
            for f in FIELDS
        ]  # fmt: skip
        devices = {
            "kinds": list(DEVICE_KINDS), "gpio_pins": list(GPIO_PINS),
            "reserved_pins": {str(k): v for k, v in reserved_pins(ctx.config.actions).items()},
            "applies": "at the next start",
        }  # fmt: skip
        return {"version": version, "settings": public_config(ctx.config), "editable": editable,
                "devices": devices}  # fmt: skip

    @app.put(
        "/api/config",
        response_model=ConfigSaved,
        tags=["api"],
        responses={**PROBLEMS, 409: {"model": Problem}, 422: {"model": Problem}},
    )  # fmt: skip
    async def api_config_put(request: Request, body: Annotated[ConfigIn, Body()]) -> Any:
        """Change settings: validated, written atomically (the previous file kept as
        .bak), applied live where possible. Send the version from GET: a save over a
        file that changed since is refused with 409."""
        authorise(request, unsafe=True)
        devices = None if body.devices is None else [d.table() for d in body.devices]
        try:
            report = await save_settings(dict(body.settings), body.version, devices)
        except _Invalid as bad:
            return JSONResponse({"detail": bad.errors}, status_code=422)
        except ConfigConflict as err:
            return JSONResponse({"detail": str(err)}, status_code=409)
        new_version = ctx.store.version()
        return {"version": new_version, "applied": list(report.applied),
                "restart": list(report.restart)}  # fmt: skip

    def running_pipeline() -> Any:
        if ctx.pipeline is None:
            raise HTTPException(409, "the engines are not loaded")
        return ctx.pipeline

    @app.post("/api/mute", response_model=ControlOut, tags=["api"],
              responses={**PROBLEMS, 409: {"model": Problem}})  # fmt: skip
    async def api_mute(request: Request, body: Annotated[MuteIn, Body()]) -> dict[str, Any]:
        """Mute or unmute the microphone (no wake word, no follow-ups while muted)."""
        authorise(request, unsafe=True)
        pipeline = running_pipeline()
        pipeline.set_muted(body.muted, by="web")
        return {"muted": pipeline.muted}

    @app.post("/api/listen-now", response_model=ControlOut, tags=["api"],
              responses={**PROBLEMS, 409: {"model": Problem}})  # fmt: skip
    async def api_listen_now(request: Request) -> dict[str, Any]:
        """Push-to-talk: listen for a request now, as if the wake word was heard."""
        authorise(request, unsafe=True)
        pipeline = running_pipeline()
        if not pipeline.listen_now(by="web"):
            reason = "it is muted" if pipeline.muted else "no microphone is being listened to"
            raise HTTPException(409, f"cannot listen now: {reason}")
        return {"muted": False, "listening": True}

    @app.get("/api/logs", tags=["api"], responses=PROBLEMS)
    async def api_logs(request: Request) -> dict[str, Any]:
        """Recent log lines (newest last)."""
        authorise(request, unsafe=False)
        return {"lines": [line.text() for line in ctx.logs.lines(500)]}

    @app.post("/api/speaker-test", tags=["api"], responses={**PROBLEMS, 503: {"model": Problem}})
    async def api_speaker_test(request: Request) -> dict[str, Any]:
        """Say a test sentence on the appliance's speaker."""
        authorise(request, unsafe=True)
        if ctx.pipeline is None or not hasattr(ctx.pipeline, "say"):
            raise HTTPException(503, "no speaker: the engines are not running")
        await ctx.pipeline.say("This is the speaker test. If you can hear me, it works.")
        return {"ok": True}

    @app.post("/api/microphone-test", tags=["api"],
              responses={**PROBLEMS, 409: {"model": Problem}})  # fmt: skip
    async def api_microphone_test(request: Request) -> dict[str, Any]:
        """Record the microphone for 2 s; its level per 100 ms in dBFS."""
        authorise(request, unsafe=True)
        if ctx.microphone_levels is None:
            raise HTTPException(409, "no microphone is attached to this appliance process")
        try:
            levels = await ctx.microphone_levels(2.0)
        except ApplianceError as err:
            raise HTTPException(409, str(err)) from None
        return {"levels_dbfs": levels}

    @app.get(
        "/api/events",
        tags=["api"],
        responses={**PROBLEMS, 200: {"content": {"text/event-stream": {}},
                                     "description": "Server-sent events, one per bus event"}},
    )  # fmt: skip
    async def api_events(request: Request) -> StreamingResponse:
        """The event bus as server-sent events: `data:` is the event as JSON, as in
        `--events` (see docs/events.md)."""
        session = authorise(request, unsafe=False)
        bearer = request.headers.get("authorization", "")[7:].strip()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=512)

        def still_allowed() -> bool:
            """A stream outlives its request: after "Reset pairing" it must stop."""
            if session is not None:
                return ctx.pairing.session_valid(session)
            return ctx.pairing.token_valid(bearer)

        def forward(event: ev.Event) -> None:
            text = getattr(event, "text", "")
            if event.type == "announcement" and text.startswith(PAIRING_ANNOUNCEMENT):
                return  # the new pairing code is for the room, not for open streams
            if queue.full():  # a slow reader loses the oldest events, never the bus
                queue.get_nowait()
            queue.put_nowait(ev.to_dict(event))

        unsubscribe = ctx.bus.subscribe(forward)

        async def stream() -> Any:
            try:
                yield "retry: 2000\n: connected\n\n"
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), 15)
                    except TimeoutError:
                        item = None
                    if not still_allowed():
                        return
                    if item is None:
                        yield ": keep-alive\n\n"
                        continue
                    yield f"data: {json.dumps(item, ensure_ascii=False)}\n\n"
            finally:
                unsubscribe()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})  # fmt: skip

    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, exc: HTTPException) -> Response:
        wants_html = "text/html" in request.headers.get("accept", "") and not \
            request.url.path.startswith("/api/")  # fmt: skip
        if wants_html:
            html = templates.get_template("error.html").render(
                status=exc.status_code, detail=str(exc.detail), notice="", csrf="",
                device_name=device_name(ctx.config), path="",
            )  # fmt: skip
            return HTMLResponse(html, status_code=exc.status_code, headers=exc.headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)  # fmt: skip

    from appliance.web.security import BodyLimit, SecurityHeaders

    app.add_middleware(BodyLimit, small=FORM_LIMIT, large=ctx.upload_limit,
                       large_paths=("/api/listen", "/api/vision"))  # fmt: skip
    app.add_middleware(SecurityHeaders)
    return app
