"""Benchmark figures for actions (`appliance bench`, `appliance bench --only actions`):

- end of speech → action done, and → answer ready, fast path vs the language model's tool
  call, on the same spoken request in the same run, with their ratio;
- how often the language model's phrasing of a tool's result passes the facts check, on
  `PHRASING_REQUESTS` (15 requests and the results their tools give).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance import events as ev
from appliance.actions.llm_tools import LlmToolCaller
from appliance.actions.tools import CallContext
from appliance.app import App, Parts
from appliance.audio.sinks import NullSink
from appliance.audio.sources import ArraySource
from appliance.config import AppConfig
from appliance.house import Actions
from appliance.llm.base import LanguageModel
from appliance.pipeline import Engines, PipelineSettings
from appliance.sections.devices import ActionsConfig, DeviceConfig, DeviceList, GpioOutput
from appliance.testing.speech import add_noise, compose, tts_phrase

COMMAND = "Turn on the porch light."
_DEVICES = [
    DeviceConfig("porch light", "light", (), "outside", GpioOutput(17, pwm=True)),
    DeviceConfig("kitchen fan", "fan", (), "kitchen", GpioOutput(27)),
]
PHRASING_REQUESTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("I need the porch light, it's dark", "device_on", {"device": "porch light"}),
    ("the kitchen fan should be off now", "device_off", {"device": "kitchen fan"}),
    ("make the porch light darker, like 30 percent", "device_brightness",
     {"device": "porch light", "percent": 30}),
    ("I'd like the kitchen fan toggled", "device_toggle", {"device": "kitchen fan"}),
    ("I wonder whether the porch light is still on", "device_state", {"device": "porch light"}),
    ("kitchen fan, power it up", "device_on", {"device": "kitchen fan"}),
    ("porch light at half brightness", "device_brightness",
     {"device": "porch light", "percent": 50}),
    ("lights out on the porch", "device_off", {"device": "porch light"}),
    ("could you give me a pasta countdown of ten minutes", "timer_set",
     {"seconds": 600, "name": "pasta"}),
    ("give me a countdown of five minutes for the eggs", "timer_set",
     {"seconds": 300, "name": "eggs"}),
    ("I need a reminder in twenty minutes", "timer_set", {"seconds": 1200}),
    ("which timers are going right now", "timer_list", {}),
    ("how much time remains on the pasta countdown", "timer_remaining", {"name": "pasta"}),
    ("get rid of the eggs countdown", "timer_cancel", {"name": "eggs"}),
    ("an hour and a half countdown for the roast", "timer_set",
     {"seconds": 5400, "name": "roast"}),
)  # fmt: skip
"""Requests the fast path leaves to the language model, with the call that does each."""


async def action_latency(
    engines: Engines, settings: PipelineSettings, runs: int = 3
) -> dict[str, Any]:
    """Median seconds from the end-pointer's end of speech to the `action` event (action
    done) and to the `handled` event (answer ready: for the language model, after it has
    phrased the result), with the fast path and with the fast path off (the language
    model's grammar-held call), `runs` times each after a warm-up turn. The pins are
    gpiozero's MockFactory: the figure is the appliance's own time."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    recording = add_noise(compose(0.5, tts_phrase(engines.tts, "Hey Jarvis."), 0.4,
                                  tts_phrase(engines.tts, COMMAND), 1.5))  # fmt: skip
    figures: dict[str, Any] = {"command": COMMAND, "runs": runs,
                               "load_average_before": list(os.getloadavg())}  # fmt: skip
    pins = MockFactory(pin_class=MockPWMPin)
    for path, fast in (("fast", True), ("llm", False)):
        # One warm-up turn each, not counted (first calls allocate buffers).
        warm_up, _ = await _one(engines, settings, recording, fast, pins)
        figures[f"{path}_warm_up_s"] = round(warm_up.get("action", float("nan")), 3)
        done, answered, tools, phrased = [], [], [], 0
        for _ in range(runs):
            marks, tool = await _one(engines, settings, recording, fast, pins)
            tools.append(tool)
            if "action" in marks:
                done.append(marks["action"])
            if "answer" in marks:
                answered.append(marks["answer"])
            phrased += marks.get("phrased_by_model", 0)
        figures[f"{path}_runs_s"] = [round(t, 3) for t in done]
        figures[f"{path}_s"] = statistics.median(done) if done else None
        figures[f"{path}_answer_s"] = statistics.median(answered) if answered else None
        figures[f"{path}_tools"] = tools
        if not fast:
            figures["llm_phrased_by_model"] = phrased
    if figures["fast_s"] and figures["llm_s"]:
        figures["llm_over_fast"] = figures["llm_s"] / figures["fast_s"]
    if figures["fast_answer_s"] and figures["llm_answer_s"]:
        figures["llm_over_fast_answer"] = figures["llm_answer_s"] / figures["fast_answer_s"]
    figures["phrasing"] = await phrasing_acceptance(engines.llm)
    figures["load_average_after"] = list(os.getloadavg())
    return figures


async def _one(
    engines: Engines, settings: PipelineSettings, recording: Any, fast: bool, pins: Any
) -> tuple[dict[str, float], str]:
    """Seconds from the end of speech to the action and to the answer, in one turn."""
    bus = ev.EventBus()
    marks: dict[str, float] = {}
    tool = ""
    heard: list[str] = []

    def watch(event: ev.Event) -> None:
        nonlocal tool
        if isinstance(event, ev.Transcript):
            heard.append(event.text)
        elif isinstance(event, ev.SpeechEnd):
            marks["speech_end"] = time.monotonic()
        elif isinstance(event, ev.Action) and "action" not in marks:
            marks["action"] = time.monotonic()
            tool = f"{event.tool}({event.arguments}) ok={event.ok}"
        elif isinstance(event, ev.Handled) and "answer" not in marks:
            marks["answer"] = time.monotonic()

    bus.subscribe(watch)
    house = AppConfig(
        devices=DeviceList(_DEVICES), actions=ActionsConfig(fast_path=fast, llm_tools=not fast)
    )
    with tempfile.TemporaryDirectory() as tmp:
        parts = Parts(vision=False, pin_factory=pins, data_dir=Path(tmp))
        async with App(house, engines, NullSink(), bus, settings=settings, parts=parts) as app:
            actions = app.actions
            # Read as fast as the pipeline takes it: the turn's own time is the same,
            # and the bench does not wait out the recording.
            await app.pipeline.run(ArraySource(recording))
            caller = actions.llm_tools
            if caller is not None and caller.last_phrasing is not None:
                phrased = caller.last_phrasing
                marks["phrased_by_model"] = float(phrased.by_model)
                tool += f" → {phrased.text!r}" + (f" ({phrased.reason})" if phrased.reason else "")
    pins.reset()
    start = marks.pop("speech_end", None)
    if start is None:
        return {}, tool or "no end of speech"
    times = {k: marks[k] - start for k in ("action", "answer") if k in marks}
    if "phrased_by_model" in marks:
        times["phrased_by_model"] = marks["phrased_by_model"]
    return times, tool or f"no action (heard {' / '.join(heard) or 'nothing'!r})"


async def phrasing_acceptance(llm: LanguageModel) -> dict[str, Any]:
    """Run each of PHRASING_REQUESTS' calls, let the model phrase the result, and count
    how many of its sentences pass the facts check. The calls themselves are given (not
    chosen by the model), so this measures the phrasing alone."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    pins = MockFactory(pin_class=MockPWMPin)
    fixed_clock = time.time()  # timers' "left" figures do not drift during the run
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        actions = Actions(_DEVICES, ActionsConfig(), ev.EventBus(), Path(tmp),
                          pin_factory=pins, clock=lambda: fixed_clock)  # fmt: skip

        async def in_thread(fn: Any, *args: Any) -> Any:
            return await asyncio.to_thread(fn, *args)

        caller = LlmToolCaller(llm, actions.registry, actions.devices, in_thread)
        async with actions:
            for turn, (text, tool, arguments) in enumerate(PHRASING_REQUESTS, 1):
                context = CallContext("llm", turn, text, "bench")
                outcome = await actions.registry.call(tool, arguments, context)
                started = time.monotonic()
                phrased = await caller.phrase_result(text, outcome)
                results.append({
                    "request": text, "template": outcome.message, "model": phrased.model_text,
                    "accepted": phrased.by_model, "reason": phrased.reason,
                    "seconds": round(time.monotonic() - started, 3),
                })  # fmt: skip
    pins.reset()
    accepted = sum(r["accepted"] for r in results)
    return {
        "requests": len(results),
        "accepted": accepted,
        "rate": accepted / len(results),
        "median_s": statistics.median(r["seconds"] for r in results),
        "results": results,
    }


def actions_runs(turns: int) -> int:
    """Turns of each path (fast, language model) for the actions figures: at least 2."""
    return max(2, min(turns, 3))
