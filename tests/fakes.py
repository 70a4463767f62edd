"""Building blocks for tests: synthetic audio the fake engines understand, and running
the `appliance` command."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numpy as np

from appliance.audio.format import PIPELINE_RATE
from appliance.audio.sinks import RecordingSink
from appliance.audio.vad import EndpointSettings, EnergyVad
from appliance.config import AppConfig, TtsConfig
from appliance.events import Event, EventBus
from appliance.llm.fake import ScriptedLlm
from appliance.pipeline import Engines, Pipeline, PipelineSettings
from appliance.stt.fake import ScriptedStt
from appliance.tts.fake import ToneTts
from appliance.wake.fake import WAKE_MARKER, MarkerWakeDetector

CHUNK = 1280
ANSWERED_TURN_EVENTS = (
    "wake", "speech_start", "speech_end", "transcript", "llm_first_token",
    "reply_sentence", "tts_first_audio", "reply", "turn_end",
)  # fmt: skip
"""Events every answered spoken turn publishes, in this order (state changes aside)."""


def repeatable_config(**changes) -> AppConfig:
    """The default config with Piper's run-to-run variation off: the end-to-end tests
    hear the same voice every run, so whisper tiny's hearing of it does not vary."""
    return AppConfig(tts=TtsConfig(vary=False), **changes)


def quiet(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 30, int(seconds * PIPELINE_RATE)).astype(np.int16)


def loud(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * PIPELINE_RATE)) / PIPELINE_RATE
    return (np.sin(2 * np.pi * 220 * t) * 9000).astype(np.int16)


def wake_chunk() -> np.ndarray:
    """One 80 ms chunk that the marker detector hears as the wake word."""
    chunk = quiet(CHUNK / PIPELINE_RATE)
    chunk[: len(WAKE_MARKER)] = WAKE_MARKER
    return chunk


def request(lead: float = 0.48, speech: float = 1.0, trail: float = 1.6) -> np.ndarray:
    """Quiet, the wake word, a pause, a 'spoken' request (a tone), then silence.
    Lengths are whole chunks so the wake marker lands at the start of a chunk."""
    return np.concatenate([quiet(lead), wake_chunk(), quiet(0.32), loud(speech), quiet(trail)])


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def types(self, skip_state: bool = True) -> list[str]:
        return [e.type for e in self.events if not (skip_state and e.type == "state")]

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.type == kind]


def make_pipeline(
    transcripts: list[str | Exception],
    replies: list[str | Exception],
    *,
    token_delay: float = 0.0,
    tts: ToneTts | None = None,
    system_prompt: str = "be brief",
    stt: Any = None,
    turn: Any = None,
    endpoint: EndpointSettings | None = None,
) -> tuple[Pipeline, Recorder, RecordingSink, ToneTts, ScriptedLlm]:
    bus = EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    sink = RecordingSink()
    tts = tts or ToneTts()
    llm = ScriptedLlm(replies, token_delay=token_delay)
    engines = Engines(
        llm=llm, tts=tts, wake=MarkerWakeDetector(), vad=EnergyVad(),
        stt=stt or ScriptedStt(transcripts), turn=turn,
    )  # fmt: skip
    settings = PipelineSettings(
        endpoint=endpoint or EndpointSettings(silence_seconds=0.5, no_speech_timeout=2.0),
        system_prompt=system_prompt,
    )
    return Pipeline(engines, sink, bus, settings), recorder, sink, tts, llm


def appliance(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the `appliance` command as a user would, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
