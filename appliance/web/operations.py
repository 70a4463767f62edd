"""What the pages and the API both do: save settings, and answer a typed request."""

from __future__ import annotations

import base64
import logging
from typing import Any

import numpy as np
from fastapi import HTTPException

from appliance.web.context import WebContext
from appliance.web.live import ApplyReport, apply_changes

_LOGGER = logging.getLogger("appliance.web.app")  # the name its log lines have always had


class Invalid(Exception):
    """Settings that did not validate: nothing was saved."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid settings")
        self.errors = errors
        """Field ("section.key", or "devices[i].field") → what is wrong with it."""


async def save_settings(
    ctx: WebContext, values: dict[str, Any], version: str, devices: list[Any] | None = None
) -> ApplyReport:
    """Validate, save over `version` (ConfigConflict if the file changed since) and apply
    what can be applied live; raises Invalid with the errors per field."""
    typed, errors = ctx.store.validate(ctx.config, values, devices)
    if errors:
        raise Invalid(errors)
    saved = ctx.store.save(ctx.config, typed, version)
    ctx.config = saved.config
    report = apply_changes(ctx.live, saved.config, saved.changed)
    for line in (*report.applied, *report.restart):
        _LOGGER.info("settings: %s", line)
    return report


def turn_out(result: Any) -> dict[str, Any]:
    """A pipeline turn's result as JSON (TurnOut)."""
    return {
        "turn": result.turn,
        "outcome": result.outcome,
        "transcript": result.transcript,
        "reply": result.reply,
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        "errors": list(result.errors),
    }


async def ask(ctx: WebContext, text: str, *, wav: bool = False) -> dict[str, Any]:
    """A typed request through the pipeline (503 while the engines are not loaded). With
    `wav`, "audio_wav_base64" is the reply as the appliance spoke it (else None)."""
    if ctx.pipeline is None:
        raise HTTPException(503, "the engines are not loaded; try again when ready")
    ctx.tracker.expect_typed(text)
    result = await ctx.pipeline.ask(text, keep_audio=wav)
    out = turn_out(result)
    out["audio_wav_base64"] = None
    if wav and result.reply_audio:
        from appliance.audio.wav import wav_bytes

        audio = np.concatenate(result.reply_audio)
        wav_data = wav_bytes(audio, result.reply_rate)
        out["audio_wav_base64"] = base64.b64encode(wav_data).decode()
    return out
