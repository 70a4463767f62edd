"""`appliance bench --only understanding`: spoken commands through whisper and the command
handler, judged by what ran.

Each sentence of the test set (`testset.py`) is spoken at run time, by Piper or an
espeak-ng voice, a third of them over pink or babble noise at 12–15 dB SNR, with silence
around it. Whisper transcribes each recording twice, without a prompt and with the
house's bias prompt (`vocabulary.bias_prompt`), for the command word error rate of each.
The transcript the appliance would act on (with the prompt when `stt.bias` is on; it is
off by default) is then asked of a real pipeline: the real language model and Piper, the
actions attached as `appliance run` attaches them, MockFactory pins, a temporary data
directory, and the house reset between sentences (no timer, empty lists, every device
off, no question pending), so every sentence starts from the same house. What ran is
read from the `action`, `intent` and `handled` events:

- **right**: every expected call ran and succeeded with the arguments that matter, and
  nothing else did;
- **wrong**: a call ran and succeeded that was not expected (must be 0);
- **confirm**: nothing ran, a confirmation was asked (neither right nor wrong);
- **missed**: an expected call did not run.

A reply sentence that claims an action (`claims.find_claim`) in a turn where none
succeeded is a **false claim** (must be 0). The handler's own time is the `handled`
event's; it is also timed alone on a house of 500 devices in 50 rooms.

The follow-up figures speak background talk and real answers, transcribe them as the
pipeline would, and judge them with `followup.plausible_answer`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance import events as ev
from appliance.actions.lists import LISTS
from appliance.actions.llm_tools import NAME as LLM_TOOLS
from appliance.actions.tools import CallContext
from appliance.audio.format import int16_to_float
from appliance.audio.sinks import NullSink
from appliance.bench.judging import (
    READ_ONLY,
    Turn,
    claims_module,
    doubled,
    false_claim,
    followup_module,
    refused,
    unexpected,
    verdict,
    word_errors,
)
from appliance.bench.large_house import LARGE_HOUSE, LARGE_HOUSE_REQUESTS, handler_alone
from appliance.bench.recordings import Recorder
from appliance.bench.testset import (
    FOLLOW_UPS,
    HOUSE,
    VOICES,
    FollowUpPhrase,
    Item,
    spoken_items,
)
from appliance.pipeline import Engines, Pipeline, PipelineSettings
from appliance.sections.devices import ActionsConfig, DeviceList
from appliance.understanding.vocabulary import bias_prompt

if TYPE_CHECKING:
    from appliance.config import AppConfig


@contextlib.contextmanager
def _data_dir(path: Path) -> Iterator[None]:
    """actions_for keeps timers, lists and the audit log in $APPLIANCE_DATA_DIR."""
    before = os.environ.get("APPLIANCE_DATA_DIR")
    os.environ["APPLIANCE_DATA_DIR"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("APPLIANCE_DATA_DIR", None)
        else:
            os.environ["APPLIANCE_DATA_DIR"] = before


def house_config(config: AppConfig) -> AppConfig:
    """The user's engines and settings with the test set's house and default actions."""
    return dataclasses.replace(config, devices=DeviceList(HOUSE), actions=ActionsConfig())


async def reset(actions: Any) -> None:
    """The house as at the start: every timer gone, the lists empty, every device off, no
    question pending."""
    for record in actions.timers.active():
        await actions.timers.cancel(record)
    for name in LISTS:
        actions.lists.clear(name)
    for device in actions.devices:
        await device.backend.set_on(False)
    for handler in actions.handlers:
        forget = getattr(handler, "forget", None) or getattr(handler, "forget_pending", None)
        if forget is not None:
            forget()


async def ask_item(
    pipeline: Pipeline, actions: Any, item: Item, transcript: str
) -> tuple[Turn, Any]:
    """The transcript asked of the pipeline after a reset and the item's setup calls; the
    turn's events and its TurnResult."""
    await reset(actions)
    for call in item.setup:
        outcome = await actions.registry.call(
            call.tool, call.arguments, CallContext("bench", origin="bench")
        )
        if not outcome.ok:
            raise RuntimeError(f"setup {call} failed: {outcome.message}")
    turn = Turn()
    unsubscribe = pipeline.bus.subscribe(turn)
    try:
        result = await pipeline.ask(transcript)
    finally:
        unsubscribe()
    return turn, result


@contextlib.asynccontextmanager
async def house_pipeline(
    engines: Engines, settings: PipelineSettings, config: AppConfig
) -> AsyncIterator[tuple[Pipeline, Any]]:
    """A pipeline with the house's actions attached as `appliance run` attaches them
    (`appliance.app.App`), on MockFactory pins and a temporary data directory."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from appliance.app import App, Parts

    pins = MockFactory(pin_class=MockPWMPin)
    try:
        with tempfile.TemporaryDirectory() as tmp, _data_dir(Path(tmp)):
            parts = Parts(vision=False, pin_factory=pins)
            async with App(config, engines, NullSink(), ev.EventBus(), settings=settings,
                           parts=parts) as app:  # fmt: skip
                yield app.pipeline, app.actions
    finally:
        pins.reset()


async def understanding_figures(
    engines: Engines,
    settings: PipelineSettings,
    config: AppConfig,
    *,
    items: Sequence[Item] | None = None,
    follow_ups: Sequence[FollowUpPhrase] | None = None,
    large_house: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The figures and the per-item rows (see the module's docstring)."""
    started = time.monotonic()
    items = spoken_items() if items is None else tuple(items)
    follow_ups = FOLLOW_UPS if follow_ups is None else tuple(follow_ups)
    config = house_config(config)
    prompt = bias_prompt(HOUSE, language=config.conversation.language)
    claims, followup = claims_module(), followup_module()
    recorder = Recorder(engines)
    rows: list[dict[str, Any]] = []
    stt_times: dict[str, list[float]] = {"unbiased": [], "biased": []}
    async with house_pipeline(engines, settings, config) as (pipeline, actions):
        prompt = pipeline.stt_prompt or prompt  # as the pipeline gives it, when it does
        for index, item in enumerate(items):
            row = await _item_row(
                index,
                item,
                recorder,
                engines,
                prompt,
                pipeline,
                actions,
                claims,
                stt_times,
                config.stt.bias,
            )
            rows.append(row)
            progress(
                f"{index + 1}/{len(items)} {row['verdict']:7} {item.text!r} → "
                f"{row['heard_' + row['asked']]!r} → {row['reply'][:60]!r}"
            )
    figures = _summary(rows, claims is not None)
    figures["bias_prompt"] = prompt
    figures["stt_median_ms"] = {
        key: round(statistics.median(times) * 1000, 1) if times else None
        for key, times in stt_times.items()
    }
    figures["transcript_asked"] = "biased" if config.stt.bias else "unbiased"
    heard_with = prompt if config.stt.bias else ""
    figures["follow_up"] = _follow_ups(follow_ups, recorder, engines, heard_with, followup)
    if large_house:
        figures["handler_500_devices"] = await handler_alone(LARGE_HOUSE, LARGE_HOUSE_REQUESTS)
    figures["rows"] = rows
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


async def _item_row(
    index: int,
    item: Item,
    recorder: Recorder,
    engines: Engines,
    prompt: str,
    pipeline: Pipeline,
    actions: Any,
    claims: Any,
    stt_times: dict[str, list[float]],
    biased: bool,
) -> dict[str, Any]:
    """Speak, transcribe without and with the prompt, ask, judge: the item's row."""
    audio = recorder.record(item.text, item.voice, item.noise, item.snr_db, seed=index)
    heard = {}
    # What the appliance would hear: the prompt only when stt.bias is on (off by default).
    # It is transcribed last, so that the engine still holds its audio for weighing.
    asked = "biased" if biased else "unbiased"
    for key, bias in sorted((("unbiased", ""), ("biased", prompt)), key=lambda k: k[0] == asked):
        t0 = time.monotonic()
        heard[key] = engines.stt.transcribe(int16_to_float(audio), prompt=bias)
        stt_times[key].append(time.monotonic() - t0)
    turn, result = await ask_item(pipeline, actions, item, heard[asked])
    judged = verdict(item, turn)
    sentences = list(result.sentences) or ([result.reply] if result.reply else [])
    return {
        "text": item.text,
        "kind": item.kind,
        "voice": item.voice,
        "noise": f"{item.noise} {item.snr_db:.0f} dB" if item.noise else "",
        "heard_unbiased": heard["unbiased"],
        "heard_biased": heard["biased"],
        "asked": asked,
        "expected": [dataclasses.asdict(c) for c in item.expect] or "NONE",
        "setup": [dataclasses.asdict(c) for c in item.setup],
        "actions": [
            {"tool": a.tool, "arguments": a.arguments, "ok": a.ok, "path": a.path}
            for a in turn.actions
        ],
        "intents": [
            {
                "intent": i.intent,
                "path": i.path,
                "score": i.score,
                "text": i.text,
                "evidence": i.evidence,
            }
            for i in turn.intents
        ],
        "handled_by": turn.handled.handler if turn.handled else "",
        "handler_s": turn.handled.seconds if turn.handled else None,
        "reply": result.reply,
        "verdict": judged,
        "wrong_change": any(a.tool not in READ_ONLY for a in unexpected(item, turn)),
        "false_claim": false_claim(sentences, turn, claims),
        "refused": refused(result.reply, turn),
        "turn_s": round(result.timings.get("turn", float("nan")), 3),
    }


def _summary(rows: list[dict[str, Any]], have_claims: bool) -> dict[str, Any]:
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("right", "wrong", "confirm",
                                                                  "missed")}  # fmt: skip
    kinds: dict[str, dict[str, int]] = {}
    for row in rows:
        kind = kinds.setdefault(row["kind"], {"items": 0, "right": 0, "wrong": 0,
                                              "confirm": 0, "missed": 0})  # fmt: skip
        kind["items"] += 1
        kind[row["verdict"]] += 1
    edits = {"unbiased": [0, 0], "biased": [0, 0]}
    for row in rows:
        for key in edits:
            errors, words = word_errors(row["text"], row[f"heard_{key}"])
            row[f"wer_{key}"] = round(errors / words, 3) if words else 0.0
            edits[key][0] += errors
            edits[key][1] += words
    # The command handler's own time: not the language model's tool call, which is also a
    # handler (and a slow one).
    handler = [r["handler_s"] for r in rows if r["handled_by"] not in ("", LLM_TOOLS)]
    refusals = [r for r in rows if r["kind"] in ("refusal", "near_miss")]
    return {
        "items": len(rows),
        "voices": {v: sum(r["voice"] == v for r in rows) for v in VOICES},
        "noisy": sum(bool(r["noise"]) for r in rows),
        **counts,
        "wrong_changed_something": sum(r["wrong_change"] for r in rows),
        "by_kind": kinds,
        "false_claims": sum(bool(r["false_claim"]) for r in rows) if have_claims else "n/a",
        "honest_refusals": sum(r["refused"] and not r["false_claim"] for r in refusals),
        "refusals_wanted": len(refusals),
        "wer_unbiased": round(edits["unbiased"][0] / max(1, edits["unbiased"][1]), 4),
        "wer_biased": round(edits["biased"][0] / max(1, edits["biased"][1]), 4),
        "doubled_unbiased": sum(doubled(r["heard_unbiased"]) for r in rows),
        "doubled_biased": sum(doubled(r["heard_biased"]) for r in rows),
        "handler_ms": {
            "turns": len(handler),
            "median": round(statistics.median(handler) * 1000, 1) if handler else None,
            "max": round(max(handler) * 1000, 1) if handler else None,
        },
    }


def _follow_ups(
    phrases: Sequence[FollowUpPhrase],
    recorder: Recorder,
    engines: Engines,
    prompt: str,
    followup: Any,
) -> dict[str, Any] | str:
    if followup is None or not phrases:
        return "n/a"
    rows = []
    for index, phrase in enumerate(phrases):
        snr = 15.0 if phrase.noise else 0.0
        audio = recorder.record(phrase.text, phrase.voice, phrase.noise, snr, seed=100 + index)
        heard = engines.stt.transcribe(int16_to_float(audio), prompt=prompt)
        kept = bool(heard) and followup.plausible_answer(heard, asked=phrase.asked)
        picked = None if kept else _picked_by_audio(heard, phrase.asked, engines)
        if picked is not None:  # as the handler does when the words named no device
            kept = not phrase.answer or picked.split()[0] in phrase.text.lower()
        rows.append({"text": phrase.text, "asked": phrase.asked, "heard": heard,
                     "answer": phrase.answer, "kept": kept, "picked_by_audio": picked})  # fmt: skip
    talk = [r for r in rows if not r["answer"]]
    answers = [r for r in rows if r["answer"]]
    kept = sum(r["kept"] for r in answers)
    return {
        "background": len(talk),
        "false_captures": sum(r["kept"] for r in talk),
        "answers": len(answers),
        "kept": kept,
        "kept_rate": round(kept / len(answers), 3) if answers else None,
        "rows": rows,
    }


def _picked_by_audio(heard: str, asked: str, engines: Engines) -> str | None:
    """After "which light: …?", the device the audio says was answered (the intent
    handler's `_pick_by_audio`), when the words named none."""
    from appliance.stt.base import PhraseScorer
    from appliance.understanding import acoustic

    offered = [d for d in HOUSE if d.name in asked.lower()]
    if not heard or not asked.startswith("Which") or not isinstance(engines.stt, PhraseScorer):
        return None
    answers = {d.name: acoustic.ways_to_say(d.name, d.aliases) for d in offered}
    return acoustic.pick_answer(heard, answers, engines.stt.score)


def table_rows(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The figures as the bench table's (measure, value, target) rows."""
    if not figures:
        return []
    n = figures["items"]
    rows = [
        (f"Spoken items ({figures['noisy']} over noise)", f"{n}", ""),
        ("Transcript acted on (stt.bias)", figures.get("transcript_asked", ""), ""),
        ("Right action (or rightly none)", f"{figures['right']}/{n}", ""),
        ("Wrong action (of them, changed something)",
         f"{figures['wrong']} ({figures['wrong_changed_something']})", "0"),
        ("Confirmations asked", f"{figures['confirm']}", ""),
        ("Missed (expected action did not run)", f"{figures['missed']}", ""),
        ("False claims of an action", f"{figures['false_claims']}", "0"),
        ("Honest refusals (refusals and near misses)",
         f"{figures['honest_refusals']}/{figures['refusals_wanted']}", ""),
        ("Command WER without / with bias",
         f"{figures['wer_unbiased'] * 100:.1f} / {figures['wer_biased'] * 100:.1f} %", ""),
    ]  # fmt: skip
    rows.append(("Transcripts saying the request twice, without / with bias",
                 f"{figures['doubled_unbiased']} / {figures['doubled_biased']}", ""))  # fmt: skip
    handler = figures.get("handler_ms", {})
    if handler.get("median") is not None:
        rows.append((f"Command handler per turn, median / max ({handler['turns']} turns)",
                     f"{handler['median']:.1f} / {handler['max']:.1f} ms", "≤ 20 ms"))  # fmt: skip
    large = figures.get("handler_500_devices")
    if large and large.get("median_ms") is not None:
        value = f"{large['median_ms']:.1f} / {large['max_ms']:.1f} ms"
        rows.append(("Handler alone, 500 devices, median / max", value, "≤ 20 ms"))
    follow = figures.get("follow_up")
    if isinstance(follow, dict):
        rows.append(("Follow-up: background talk captured",
                     f"{follow['false_captures']}/{follow['background']}", "0"))  # fmt: skip
        rows.append(("Follow-up: real answers kept", f"{follow['kept']}/{follow['answers']}",
                     "≥ 95 %"))  # fmt: skip
    else:
        rows.append(("Follow-up window", "n/a", ""))
    return rows
