"""Benchmark figures for actions: end of speech → action done, fast path vs the language
model's tool call, on the same spoken request in the same run (`appliance bench`)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from appliance import events as ev
from appliance.actions.app import Actions
from appliance.actions.config import ActionsConfig, DeviceConfig, GpioOutput
from appliance.audio.sinks import NullSink
from appliance.audio.sources import ArraySource
from appliance.pipeline import Engines, Pipeline, PipelineSettings
from appliance.testing.speech import add_noise, compose, tts_phrase

COMMAND = "Turn on the porch light."
_DEVICES = [DeviceConfig("porch light", "light", (), "outside", GpioOutput(17, pwm=True))]


async def action_latency(
    engines: Engines, settings: PipelineSettings, runs: int = 3
) -> dict[str, Any]:
    """Median seconds from the end-pointer's end of speech to the `action` event, with the
    fast path and with the fast path off (the language model's grammar-held call).
    The pins are gpiozero's MockFactory: the figure is the appliance's own time."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    recording = add_noise(compose(0.5, tts_phrase(engines.tts, "Hey Jarvis."), 0.4,
                                  tts_phrase(engines.tts, COMMAND), 1.5))  # fmt: skip
    figures: dict[str, Any] = {"command": COMMAND}
    for path, fast in (("fast", True), ("llm", False)):
        times, tools = [], []
        for _ in range(runs):  # the bench's earlier turns have warmed every engine up
            took, tool = await _one(engines, settings, recording, fast,
                                    MockFactory(pin_class=MockPWMPin))  # fmt: skip
            times.append(took)
            tools.append(tool)
        done = sorted(t for t in times if t is not None)
        figures[f"{path}_s"] = done[len(done) // 2] if done else None
        figures[f"{path}_tools"] = tools
    if figures["fast_s"] and figures["llm_s"]:
        figures["llm_over_fast"] = figures["llm_s"] / figures["fast_s"]
    return figures


async def _one(
    engines: Engines, settings: PipelineSettings, recording: Any, fast: bool, pins: Any
) -> tuple[float | None, str]:
    bus = ev.EventBus()
    marks: dict[str, float] = {}
    tool = ""

    def watch(event: ev.Event) -> None:
        nonlocal tool
        if isinstance(event, ev.SpeechEnd):
            marks["speech_end"] = time.monotonic()
        elif isinstance(event, ev.Action) and "action" not in marks:
            marks["action"] = time.monotonic()
            tool = f"{event.tool}({event.arguments}) ok={event.ok}"

    bus.subscribe(watch)
    config = ActionsConfig(fast_path=fast, llm_tools=not fast)
    with tempfile.TemporaryDirectory() as tmp:
        async with Pipeline(engines, NullSink(), bus, settings) as pipeline:
            actions = Actions(_DEVICES, config, bus, Path(tmp), pin_factory=pins)
            async with actions:
                actions.attach(pipeline)
                # Read as fast as the pipeline takes it: the turn's own time is the same,
                # and the bench does not wait out the recording.
                await pipeline.run(ArraySource(recording))
    pins.reset()
    if "action" not in marks or "speech_end" not in marks:
        return None, tool or "no action"
    return marks["action"] - marks["speech_end"], tool
