"""The JSON API (/api/…) and the event stream, described at /openapi.json.

A caller needs a paired browser's session or a bearer token: `security.RequireAuth`
answers 401 before anything of the request is read. A session's state-changing call
also needs its X-CSRF-Token header (403), checked after its body (422; deps.authorised).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.responses import StreamingResponse

from appliance import events as ev
from appliance.errors import ApplianceError, AudioInputError
from appliance.sections.devices import DEVICE_KINDS
from appliance.vision.intents import look_kind
from appliance.web.bodies import FORM_LIMIT, read_body
from appliance.web.context import WebContext
from appliance.web.deps import (
    Ctx,
    authorised,
    json_body,
    require_session,
    require_session_csrf,
)
from appliance.web.devices import GPIO_PINS, reserved_pins
from appliance.web.operations import Invalid, ask, save_settings, turn_out
from appliance.web.pairing import PAIRING_ANNOUNCEMENT
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
    FIELDS,
    ConfigConflict,
    current_value,
    model_choices,
    public_config,
)
from appliance.web.status import status_snapshot

router = APIRouter()

READ = Depends(require_session)
"""A call that only reads: a session or a bearer token."""
WRITE = Depends(require_session_csrf)
"""A call that changes something: a bearer token, or a session with its CSRF token."""

AskBody = Annotated[AskRequest, Depends(authorised(json_body(AskRequest)))]
ConfigBody = Annotated[ConfigIn, Depends(authorised(json_body(ConfigIn)))]
MuteBody = Annotated[MuteIn, Depends(authorised(json_body(MuteIn)))]


@dataclass(frozen=True)
class VisionParams:
    question: str
    kind: Literal["read", "describe"] | None
    speak: bool


async def vision_params(
    question: Annotated[str, Query(max_length=1000)] = "",
    kind: Literal["read", "describe"] | None = None,
    speak: bool = False,
) -> VisionParams:
    """POST /api/vision's query string (with an image; JSON carries its own)."""
    return VisionParams(question, kind, speak)


VisionQuery = Annotated[VisionParams, Depends(authorised(vision_params))]


# ---- asking: typed, spoken, shown --------------------------------------------------------


@router.post("/api/ask", response_model=AskResponse, tags=["api"],
             responses={**PROBLEMS, 503: {"model": Problem}})  # fmt: skip
async def api_ask(ctx: Ctx, body: AskBody) -> dict[str, Any]:
    """A typed request: the reply (spoken by the appliance too), optionally as audio."""
    return await ask(ctx, body.text.strip(), wav=body.audio)


@router.post(
    "/api/listen",
    response_model=ListenResponse,
    tags=["api"],
    responses={**PROBLEMS, 400: {"model": Problem}, 413: {"model": Problem},
               503: {"model": Problem}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "audio/wav": {"schema": {"type": "string", "format": "binary"}}}}},
    dependencies=[WRITE],
)  # fmt: skip
async def api_listen(request: Request, ctx: Ctx) -> dict[str, Any]:
    """A WAV recording (any PCM format) run through the pipeline as if heard by the
    microphone: wake word, then the request. At most 20 MiB."""
    if ctx.pipeline is None:
        raise HTTPException(503, "the engines are not loaded; try again when ready")
    data = await read_body(request, ctx.upload_limit)
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
    return {"turns": [turn_out(r) for r in results], "message": message}


VISION_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": VisionCapture.model_json_schema()},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
    },
}


@router.post(
    "/api/vision",
    response_model=VisionOut,
    tags=["api"],
    responses={**PROBLEMS, 413: {"model": Problem}, 415: {"model": Problem},
               422: {"model": Problem}, 503: {"model": Problem}},
    openapi_extra={"requestBody": VISION_BODY},
)  # fmt: skip
async def api_vision(request: Request, ctx: Ctx, query: VisionQuery) -> dict[str, Any]:
    """Look once. Either an image (`Content-Type: image/jpeg`, `image/png` or another
    image type; at most `vision.max_image_bytes`), with `question`, `kind` and `speak`
    in the query string; or JSON `{"capture": true, "question": "read this"}` to take
    a picture with the camera now. Returns the answer, the backend and what OCR read."""
    question, kind, speak = query.question, query.kind, query.speak
    vision = ctx.vision
    if vision is None:
        raise HTTPException(
            503, "vision is off: no camera is configured or found (set vision.camera; "
            "see docs/vision.md)",
        )  # fmt: skip
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    image: bytes | None = None
    if media == "application/json":
        raw = await read_body(request, FORM_LIMIT)
        try:
            body = VisionCapture.model_validate_json(raw)
        except ValidationError as err:
            details = err.errors(include_url=False, include_context=False, include_input=False)
            raise HTTPException(422, details) from None
        question, kind, speak = body.question, body.kind, body.speak
    elif media.startswith("image/") or media == "application/octet-stream":
        limit = vision.config.max_image_bytes
        image = await read_body(
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


# ---- state and settings ------------------------------------------------------------------


@router.get("/api/status", tags=["api"], responses=PROBLEMS, dependencies=[READ])
async def api_status(ctx: Ctx) -> dict[str, Any]:
    """State, models and their RAM, CPU temperature and load, memory and zram, the
    recent turns with per-stage latency, and errors."""
    snapshot = status_snapshot(ctx.tracker, ctx.config, root=ctx.sysroot,
                               started=ctx.started)  # fmt: skip
    return {**snapshot, "notice": ctx.notice}


@router.get("/api/config", response_model=ConfigOut, tags=["api"], responses=PROBLEMS,
            dependencies=[READ])  # fmt: skip
async def api_config(ctx: Ctx, response: Response) -> dict[str, Any]:
    """The settings in effect, the editable fields, and the version to send back."""
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


@router.put(
    "/api/config",
    response_model=ConfigSaved,
    tags=["api"],
    responses={**PROBLEMS, 409: {"model": Problem}, 422: {"model": Problem}},
)  # fmt: skip
async def api_config_put(ctx: Ctx, body: ConfigBody) -> Any:
    """Change settings: validated, written atomically (the previous file kept as
    .bak), applied live where possible. Send the version from GET: a save over a
    file that changed since is refused with 409."""
    devices = None if body.devices is None else [d.table() for d in body.devices]
    try:
        report = await save_settings(ctx, dict(body.settings), body.version, devices)
    except Invalid as bad:
        return JSONResponse({"detail": bad.errors}, status_code=422)
    except ConfigConflict as err:
        return JSONResponse({"detail": str(err)}, status_code=409)
    new_version = ctx.store.version()
    return {"version": new_version, "applied": list(report.applied),
            "restart": list(report.restart)}  # fmt: skip


# ---- controls and tests ------------------------------------------------------------------


def running_pipeline(ctx: WebContext) -> Any:
    """The pipeline, or 409 while the engines are not loaded."""
    if ctx.pipeline is None:
        raise HTTPException(409, "the engines are not loaded")
    return ctx.pipeline


@router.post("/api/mute", response_model=ControlOut, tags=["api"],
             responses={**PROBLEMS, 409: {"model": Problem}})  # fmt: skip
async def api_mute(ctx: Ctx, body: MuteBody) -> dict[str, Any]:
    """Mute or unmute the microphone (no wake word, no follow-ups while muted)."""
    pipeline = running_pipeline(ctx)
    pipeline.set_muted(body.muted, by="web")
    return {"muted": pipeline.muted}


@router.post("/api/listen-now", response_model=ControlOut, tags=["api"],
             responses={**PROBLEMS, 409: {"model": Problem}}, dependencies=[WRITE])  # fmt: skip
async def api_listen_now(ctx: Ctx) -> dict[str, Any]:
    """Push-to-talk: listen for a request now, as if the wake word was heard."""
    pipeline = running_pipeline(ctx)
    if not pipeline.listen_now(by="web"):
        reason = "it is muted" if pipeline.muted else "no microphone is being listened to"
        raise HTTPException(409, f"cannot listen now: {reason}")
    return {"muted": False, "listening": True}


@router.get("/api/logs", tags=["api"], responses=PROBLEMS, dependencies=[READ])
async def api_logs(ctx: Ctx) -> dict[str, Any]:
    """Recent log lines (newest last)."""
    return {"lines": [line.text() for line in ctx.logs.lines(500)]}


@router.post("/api/speaker-test", tags=["api"], responses={**PROBLEMS, 503: {"model": Problem}},
             dependencies=[WRITE])  # fmt: skip
async def api_speaker_test(ctx: Ctx) -> dict[str, Any]:
    """Say a test sentence on the appliance's speaker."""
    if ctx.pipeline is None or not hasattr(ctx.pipeline, "say"):
        raise HTTPException(503, "no speaker: the engines are not running")
    await ctx.pipeline.say("This is the speaker test. If you can hear me, it works.")
    return {"ok": True}


@router.post("/api/microphone-test", tags=["api"],
             responses={**PROBLEMS, 409: {"model": Problem}}, dependencies=[WRITE])  # fmt: skip
async def api_microphone_test(ctx: Ctx) -> dict[str, Any]:
    """Record the microphone for 2 s; its level per 100 ms in dBFS."""
    if ctx.microphone_levels is None:
        raise HTTPException(409, "no microphone is attached to this appliance process")
    try:
        levels = await ctx.microphone_levels(2.0)
    except ApplianceError as err:
        raise HTTPException(409, str(err)) from None
    return {"levels_dbfs": levels}


# ---- the event stream --------------------------------------------------------------------


@router.get(
    "/api/events",
    tags=["api"],
    responses={**PROBLEMS, 200: {"content": {"text/event-stream": {}},
                                 "description": "Server-sent events, one per bus event"}},
)  # fmt: skip
async def api_events(
    request: Request, ctx: Ctx, session: Annotated[str | None, Depends(require_session)]
) -> StreamingResponse:
    """The event bus as server-sent events: `data:` is the event as JSON, as in
    `--events` (see docs/events.md)."""
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
