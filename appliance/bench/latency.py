"""Felt latency (`appliance bench`, `appliance bench --only latency`): from the last voiced
audio of a request to the first reply audio, as the person waits, with the smart
end-of-turn and with the old fixed 0.7 s silence, on the same recordings in one run.

The recordings are played in real time: 12 plain requests (questions for the language
model, commands and timers for the actions) and 8 sentences with a pause of 0.4–0.8 s in
the middle, each in Piper's voice or espeak-ng's. A paused sentence whose request ended
before its last word is a **cut-off** (the VAD takes a chunk or two to hear speech
resume, so an end just after the second half began is one too).

Then the first sound of the language model's answers, typed so that only the reply
differs: spoken from the first clause of a long first sentence (`tts.first_clause_chars`)
and from the whole sentence, on the same questions (the model is greedy, so the same
words both times).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from appliance import events as ev
from appliance.app import App, Parts
from appliance.audio.format import PIPELINE_RATE, AudioChunk
from appliance.audio.sinks import NullSink
from appliance.audio.sources import ArraySource
from appliance.config import AppConfig
from appliance.pipeline import Engines, PipelineSettings
from appliance.testing.speech import (
    add_noise,
    compose,
    espeak_phrase,
    paused_sentence,
    tts_phrase,
    voiced_end,
)

PLAIN = (
    "What time is it?",
    "Turn on the porch light.",
    "What is the capital of France?",
    "Set a timer for five minutes.",
    "Turn off the kitchen fan.",
    "Tell me a joke.",
    "What's the date today?",
    "Is the porch light on?",
    "How far away is the moon?",
    "Cancel the timer.",
    "Set the porch light to 40 percent.",
    "What can you do?",
)
PAUSED = (
    ("Set a timer for", 0.6, "ten minutes."),
    ("Turn on the", 0.5, "kitchen fan."),
    ("What is the capital of", 0.7, "Germany?"),
    ("Set the porch light to", 0.8, "fifty percent."),
    ("Could you tell me", 0.4, "a short joke?"),
    ("Turn off the porch light and", 0.6, "the kitchen fan."),
    ("Set a timer for five minutes and", 0.5, "thirty seconds."),
    ("What is the weather like in", 0.7, "Paris?"),
)


@dataclass(frozen=True)
class Recording:
    text: str
    samples: np.ndarray
    last_voiced: float
    """Seconds into the recording where the request's last voiced audio ends."""
    resumes: float = 0.0
    """For a paused sentence: where its second half starts (0 for the others)."""
    request_starts: float = 0.0
    """Seconds into the recording where the request begins (after the wake word)."""


def recordings(engines: Engines) -> list[Recording]:
    """Every other one in Piper's voice, the rest in espeak-ng's (American, British)."""
    wake = tts_phrase(engines.tts, "Hey Jarvis.")
    head = compose(0.5, wake, 0.3)
    lead = len(head) / PIPELINE_RATE
    made = []
    for index, text in enumerate(PLAIN):
        if index % 2:
            speech = espeak_phrase(text, voice="en-us" if index % 4 == 1 else "en-gb")
        else:
            speech = tts_phrase(engines.tts, text)
        end = lead + voiced_end(speech)
        made.append(Recording(text, add_noise(compose(head, speech, 2.5)), end,
                              request_starts=lead))  # fmt: skip
    for index, (first, pause, second) in enumerate(PAUSED):
        if index % 2:
            voice = "en-us" if index % 4 == 1 else "en-gb"
            spoken = paused_sentence(first, second, pause, voice=voice)
        else:
            spoken = paused_sentence(first, second, pause, tts=engines.tts)
        end = lead + voiced_end(spoken.samples)
        samples = add_noise(compose(head, spoken.samples, 2.5))
        made.append(Recording(f"{first} … {second}", samples, end, lead + spoken.resumes,
                              request_starts=lead))  # fmt: skip
    return made


class _TimedSource(ArraySource):
    """A real-time source that notes when (monotonic) its audio began."""

    started = 0.0

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        async for chunk in super().chunks():
            if not self.started and chunk.captured_at:
                self.started = chunk.captured_at - chunk.end
            yield chunk


class _FirstAudio(NullSink):
    """A sink that plays nothing and notes when the first reply audio arrived."""

    first: float | None = None

    async def play(self, samples: np.ndarray, rate: int) -> None:
        if self.first is None:
            self.first = time.monotonic()
        await super().play(samples, rate)


async def _one(
    engines: Engines,
    settings: PipelineSettings,
    recording: Recording,
    pins: Any,
    data: Path,
    config: AppConfig | None = None,
) -> dict[str, Any]:
    """One recording through the app; `config`: the house's (six devices) by default."""
    bus = ev.EventBus()
    ends: list[float] = []
    withdrawn: list[float] = []
    judged: list[str] = []

    def watch(event: ev.Event) -> None:
        if isinstance(event, ev.SpeechEnd):
            ends.append(event.stream_time)
        elif isinstance(event, ev.TurnEnd) and event.outcome == "resumed":
            withdrawn.append(ends.pop())  # ended too early, taken back before it acted
        elif isinstance(event, ev.EndOfTurn):
            judged.append(
                f"{event.silence_seconds:.2f} s: p={event.probability:.2f} {event.decision}"
                + (f" ({event.unfinished})" if event.unfinished else "")
            )

    bus.subscribe(watch)
    sink = _FirstAudio()
    source = _TimedSource(recording.samples, realtime=True)
    house = config or house_config()
    parts = Parts(vision=False, pin_factory=pins, data_dir=data)
    async with App(house, engines, sink, bus, settings=settings, parts=parts) as app:
        results = await app.pipeline.run(source)
        stats = app.pipeline.turn_taking.stats
        prepared = app.actions.recognizer.pause_weighings
    pins.reset()
    row: dict[str, Any] = {
        "text": recording.text,
        "heard": [r.transcript for r in results],
        "replies": [r.reply for r in results],
        "turns": len(results),
        "judged": judged,
        "withdrawn": len(withdrawn),
        "speculation": {"used": stats.used, "discarded": stats.discarded,
                        "saved_s": round(stats.saved_seconds, 3),
                        "ready_before_end_s": round(stats.ready_before_end_seconds, 3)},
        "weighed_at_the_pause": {"kept": prepared.kept, "used": prepared.used},
    }  # fmt: skip
    if sink.first is not None:
        row["felt_s"] = round(sink.first - (source.started + recording.last_voiced), 3)
    if ends:  # in audio time: the wait for the pause, whatever the machine's speed
        row["ended_after_last_word_s"] = round(ends[-1] - recording.last_voiced, 3)
    if recording.resumes:  # answered before its last word: the end-pointer cut the sentence
        row["cut_off"] = any(end < recording.last_voiced for end in ends)
    return row


def house_config() -> AppConfig:
    """The bench's house: six devices (`appliance/bench/actions.py`)."""
    from appliance.bench.actions import _DEVICES
    from appliance.sections.devices import DeviceList

    return AppConfig(devices=DeviceList(_DEVICES))


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    felt = sorted(r["felt_s"] for r in rows if "felt_s" in r)
    paused = [r for r in rows if "cut_off" in r]
    return {
        "turns": len(rows),
        "answered": len(felt),
        "felt_median_s": statistics.median(felt) if felt else None,
        "felt_p90_s": felt[min(len(felt) - 1, int(0.9 * len(felt)))] if felt else None,
        "paused_sentences": len(paused),
        "cut_offs": sum(r["cut_off"] for r in paused),
        "withdrawn": sum(r["withdrawn"] for r in rows),
        "ended_after_last_word_median_s": statistics.median(
            r["ended_after_last_word_s"] for r in rows if "ended_after_last_word_s" in r
        ),
        "speculation_used": sum(r["speculation"]["used"] for r in rows),
        "speculation_discarded": sum(r["speculation"]["discarded"] for r in rows),
        "speculation_saved_s": round(sum(r["speculation"]["saved_s"] for r in rows), 3),
        "weighed_at_the_pause_kept": sum(r["weighed_at_the_pause"]["kept"] for r in rows),
        "weighed_at_the_pause_used": sum(r["weighed_at_the_pause"]["used"] for r in rows),
        "transcript_ready_before_end_s": sorted(
            r["speculation"]["ready_before_end_s"] for r in rows if r["speculation"]["used"]
        ),
    }


async def felt_latency(
    engines: Engines, settings: PipelineSettings, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every recording with the smart end-of-turn, then with the fixed silence."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    if engines.turn is None:
        raise RuntimeError(
            'the end-of-turn model is not loaded (listen.end_of_turn = "smart" and '
            "`appliance models prepare`), so there is nothing to compare"
        )
    pins = MockFactory(pin_class=MockPWMPin)
    made = recordings(engines)
    ways = {
        "smart": engines,
        "fixed": replace(engines, turn=None, turn_unavailable=""),
    }
    report: dict[str, Any] = {"silence_seconds": settings.endpoint.silence_seconds}
    with tempfile.TemporaryDirectory() as tmp:
        # A warm-up turn each (first calls allocate buffers), not counted.
        for name, these in ways.items():
            await _one(these, settings, made[0], pins, Path(tmp) / f"warm-{name}")
        for name, these in ways.items():
            rows = []
            for index, recording in enumerate(made):
                row = await _one(these, settings, recording, pins, Path(tmp) / f"{name}{index}")
                rows.append(row)
                felt = row.get("felt_s")
                progress(
                    f"{name} {index + 1}/{len(made)}: {recording.text!r} → "
                    f"{'no reply' if felt is None else f'{felt * 1000:.0f} ms'}"
                    f"{' CUT OFF' if row.get('cut_off') else ''} (heard {row['heard']})"
                )
            report[name] = {"summary": _summary(rows), "rows": rows}
    smart, fixed = report["smart"]["summary"], report["fixed"]["summary"]
    if smart["felt_median_s"] and fixed["felt_median_s"]:
        report["smart_over_fixed"] = smart["felt_median_s"] / fixed["felt_median_s"]
    report["first_clause"] = await first_clause(engines, settings, progress)
    return report


QUESTIONS = (
    "How far away is the moon?",
    "Why is the sky blue?",
    "What is the tallest mountain in the world?",
    "Tell me about the city of Paris.",
    "How do bees make honey?",
    "What is a black hole?",
)


async def first_clause(
    engines: Engines, settings: PipelineSettings, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """Time to the first reply audio of typed questions, first clause vs whole sentence,
    alternating the two on each question so that neither always runs on a warm cache."""
    clause_chars = settings.first_clause_chars or 24
    rows = []
    sink = _FirstAudio()
    ways = {"clause": clause_chars, "sentence": 0}
    for question in QUESTIONS:
        row: dict[str, Any] = {"question": question}
        for name, chars in ways.items():
            these = replace(settings, first_clause_chars=chars)
            typed = Parts(actions=False, vision=False)
            async with App(AppConfig(), engines, sink, ev.EventBus(), settings=these,
                           parts=typed) as app:  # fmt: skip
                result = await app.ask(question)
            row[f"{name}_s"] = round(result.timings.get("ttfa", float("nan")), 3)
            row[f"{name}_first"] = result.sentences[0] if result.sentences else ""
        rows.append(row)
        progress(
            f"{question!r}: clause {row['clause_s'] * 1000:.0f} ms ({row['clause_first']!r}), "
            f"sentence {row['sentence_s'] * 1000:.0f} ms"
        )
    clause = statistics.median(r["clause_s"] for r in rows)
    sentence = statistics.median(r["sentence_s"] for r in rows)
    split = sum(r["clause_first"] != r["sentence_first"] for r in rows)
    return {"rows": rows, "clause_median_s": clause, "sentence_median_s": sentence,
            "clause_over_sentence": clause / sentence if sentence else None,
            "questions_split": split, "first_clause_chars": clause_chars}  # fmt: skip


def table_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    smart, fixed = report["smart"]["summary"], report["fixed"]["summary"]

    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value * 1000:.0f} ms"

    ratio = report.get("smart_over_fixed")
    rows = [
        ("Felt latency, median (smart / fixed 0.7 s)",
         f"{ms(smart['felt_median_s'])} / {ms(fixed['felt_median_s'])}", "≤ 600 ms"),
        ("Felt latency, p90 (smart / fixed)",
         f"{ms(smart['felt_p90_s'])} / {ms(fixed['felt_p90_s'])}", ""),
        ("Smart / fixed (median)", "–" if ratio is None else f"{ratio:.2f}", "≤ 0.60"),
        ("Cut-offs in paused sentences (smart / fixed)",
         f"{smart['cut_offs']} / {fixed['cut_offs']} of {smart['paused_sentences']}", "0"),
        ("Turns ended too early and taken back (smart)", str(smart["withdrawn"]), ""),
        ("Speculative STT used / discarded, saved",
         f"{smart['speculation_used']} / {smart['speculation_discarded']}, "
         f"{ms(smart['speculation_saved_s'])}", ""),
    ]  # fmt: skip
    clause = report.get("first_clause")
    if clause:
        rows.append((
            "Model's first audio, typed: first clause / whole sentence",
            f"{ms(clause['clause_median_s'])} / {ms(clause['sentence_median_s'])} "
            f"({clause['questions_split']} of {len(clause['rows'])} split)", "",
        ))  # fmt: skip
    return rows
