"""Typed events the pipeline publishes: the public event stream (`--events`).

Each event is a small frozen record. Every one carries the turn number, the stream time
(seconds of input audio consumed when it happened, or the audio position it refers to),
and the wall-clock time. `to_dict` is the one serialiser; the JSON Lines schema in
docs/events.md is generated from these classes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Event:
    type: ClassVar[str] = "event"
    turn: int
    """Turn number, from 1; 0 for events outside a turn (ready, state changes while idle)."""
    stream_time: float
    """Seconds into the input audio this event refers to."""
    wall_time: float = field(default_factory=time.time)
    """Unix time when the event was published."""


@dataclass(frozen=True, kw_only=True)
class Ready(Event):
    type: ClassVar[str] = "ready"
    load_seconds: float
    """Time until it listens: under `appliance run` the voice still loads on
    (`appliance.deferred`); elsewhere every engine is loaded."""


@dataclass(frozen=True, kw_only=True)
class ModelPlanned(Event):
    type: ClassVar[str] = "model_plan"
    model: str
    """The language model that will be (or would have been) loaded."""
    decision: str
    """load, load_with_zram, smaller_context, fallback or refuse."""
    context: int
    message: str
    """The numbers behind the decision, in plain words."""


@dataclass(frozen=True, kw_only=True)
class StateChanged(Event):
    type: ClassVar[str] = "state"
    state: str
    """idle, listening, thinking, speaking, follow_up (listening without the wake word),
    muted or error."""


@dataclass(frozen=True, kw_only=True)
class Wake(Event):
    type: ClassVar[str] = "wake"
    wake_word: str
    score: float


@dataclass(frozen=True, kw_only=True)
class SpeechStart(Event):
    type: ClassVar[str] = "speech_start"


@dataclass(frozen=True, kw_only=True)
class SpeechEnd(Event):
    type: ClassVar[str] = "speech_end"
    speech_seconds: float
    """Length of the captured utterance, pre-roll included."""
    timed_out: bool = False
    """True when the utterance hit the maximum length instead of ending in silence."""


@dataclass(frozen=True, kw_only=True)
class EndOfTurn(Event):
    type: ClassVar[str] = "end_of_turn"
    silence_seconds: float
    """How long the speaker had been silent when the end-of-turn model was asked."""
    probability: float
    """The model's probability that the speaker has finished (above 0.5: finished)."""
    unfinished: str
    """Why the words so far sound unfinished ("ends on 'for'", "trails off"), or ""."""
    decision: str
    """end (the request is over: answered now) or wait (listening on)."""


@dataclass(frozen=True, kw_only=True)
class EndOfTurnFallback(Event):
    type: ClassVar[str] = "end_of_turn_fallback"
    message: str
    """Why the end-of-turn model is not used (missing, corrupt or failing): requests
    then end after `listen.silence_seconds` of silence."""


@dataclass(frozen=True, kw_only=True)
class Transcript(Event):
    type: ClassVar[str] = "transcript"
    text: str
    stt_seconds: float


@dataclass(frozen=True, kw_only=True)
class LlmFirstToken(Event):
    type: ClassVar[str] = "llm_first_token"
    seconds_after_transcript: float


@dataclass(frozen=True, kw_only=True)
class ReplySentence(Event):
    type: ClassVar[str] = "reply_sentence"
    index: int
    text: str


@dataclass(frozen=True, kw_only=True)
class TtsFirstAudio(Event):
    type: ClassVar[str] = "tts_first_audio"
    seconds_after_speech_end: float
    """Time to first audio (TTFA): end of speech detected → first reply audio to the sink."""


@dataclass(frozen=True, kw_only=True)
class Reply(Event):
    type: ClassVar[str] = "reply"
    text: str
    audio_seconds: float


@dataclass(frozen=True, kw_only=True)
class Interrupted(Event):
    type: ClassVar[str] = "interrupted"
    by: str
    """wake (the wake word said over the reply), stop (a stop phrase), or what asked to
    listen now (button, mqtt, api, …)."""
    reaction_seconds: float
    """From the interruption being recognised to the speaker being told to stop."""
    heard: str
    """The part of the reply that was played before the cut (kept in the conversation)."""


@dataclass(frozen=True, kw_only=True)
class FollowUp(Event):
    type: ClassVar[str] = "follow_up"
    seconds: float
    """How long the appliance listens for a follow-up without the wake word."""


@dataclass(frozen=True, kw_only=True)
class TurnEnd(Event):
    type: ClassVar[str] = "turn_end"
    outcome: str
    """replied, interrupted, stopped ("stop" with nothing playing), no_speech (woken but
    nothing said), empty_transcript, ignored (talk in a follow-up window that answered
    nothing: not replied to), resumed (ended at a pause and taken back before it acted or
    spoke, because the speaker went on: the same turn ends again later), or error."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage: stt, llm_first_token, llm_total, tts_first_sentence, ttfa, turn."""


@dataclass(frozen=True, kw_only=True)
class Handled(Event):
    type: ClassVar[str] = "handled"
    handler: str
    """Who answered the request instead of the language model (fast_path, vision, …)."""
    action: str
    """The tool or action it ran; empty when it only answered."""
    seconds: float
    """From the request (transcript or typed text) to the handler's answer."""


@dataclass(frozen=True, kw_only=True)
class Announcement(Event):
    type: ClassVar[str] = "announcement"
    text: str
    """Spoken without a request: a timer that ended, a "say" command."""


@dataclass(frozen=True, kw_only=True)
class RemoteFallback(Event):
    type: ClassVar[str] = "remote_fallback"
    remote: str
    """Who was to answer: "home_assistant"."""
    reason: str
    """Why it could not; the appliance answered the same request itself."""


@dataclass(frozen=True, kw_only=True)
class RemoteTimer(Event):
    type: ClassVar[str] = "remote_timer"
    timer_id: str
    """Home Assistant's id for the timer."""
    name: str
    state: str
    """started, updated, cancelled or finished."""
    seconds: int
    """Its total duration."""
    seconds_left: int
    active: bool
    """False while paused."""


@dataclass(frozen=True, kw_only=True)
class RemoteState(Event):
    type: ClassVar[str] = "remote_state"
    stage: str
    """llm, stt or tts: the stage whose remote engine (a bigger box) this is."""
    remote: str
    """Its address, as configured."""
    up: bool
    reason: str = ""
    """Why it is down ("" when up)."""
    retry_seconds: float = 0.0
    """When down: the wait before its health check is tried again."""


@dataclass(frozen=True, kw_only=True)
class StageFallback(Event):
    type: ClassVar[str] = "stage_fallback"
    stage: str
    """The stage this board's own engine took over (llm, stt or tts)."""
    remote: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class RoomDecision(Event):
    type: ClassVar[str] = "room_decision"
    wake_word: str
    won: bool
    """True: this box answers; False: another room's box does."""
    winner: str
    """The answering box's name."""
    claims: int
    """Boxes that heard this wake word (this one included)."""
    level_db: float
    """How loud the wake word was here (dBFS)."""
    score: float
    waited_ms: float
    """From this box's claim to the decision: what the arbitration cost."""
    early: bool
    """Decided before the window's end."""


@dataclass(frozen=True, kw_only=True)
class RoomConflict(Event):
    type: ClassVar[str] = "room_conflict"
    problem: str
    """Another box has this one's name, or this box cannot reach the others: what to
    change."""


@dataclass(frozen=True, kw_only=True)
class SatelliteServing(Event):
    type: ClassVar[str] = "satellite_serving"
    port: int
    """The native API's TCP port (appliance/satellite)."""
    encrypted: bool
    """False: plaintext (`satellite.plaintext = true`)."""
    error: str = ""
    """Why it is not served (the port is taken, …); empty: it is served."""


@dataclass(frozen=True, kw_only=True)
class SatelliteConnection(Event):
    type: ClassVar[str] = "satellite_connection"
    connected: bool
    """True when a native API client said Hello, False when it is gone."""
    client: str
    """What the client calls itself, e.g. "Home Assistant 2026.11.0"."""
    peer: str
    """Its address and port."""
    clients: int
    """Clients connected now."""


@dataclass(frozen=True, kw_only=True)
class Muted(Event):
    type: ClassVar[str] = "muted"
    muted: bool
    by: str
    """What changed it: switch, button, mqtt, api, …"""


@dataclass(frozen=True, kw_only=True)
class Error(Event):
    type: ClassVar[str] = "error"
    stage: str
    code: str
    message: str


@dataclass(frozen=True, kw_only=True)
class VisionLooked(Event):
    type: ClassVar[str] = "vision"
    kind: str
    """read (OCR) or describe (a vision model, or an honest answer without one)."""
    backend: str
    """rapidocr, the vision model's name, or none (no image could be had)."""
    seconds: float
    """From the request to the answer, the capture included."""
    text: str
    """The answer as spoken, or the reason nothing could be seen."""
    image_saved: str
    """Path of the kept image (only with vision.save_images = true), else ""."""


@dataclass(frozen=True, kw_only=True)
class Action(Event):
    type: ClassVar[str] = "action"
    tool: str
    """The tool that ran (or was refused), e.g. device_on, timer_set."""
    arguments: dict[str, Any]
    ok: bool
    """False when the call was refused or failed; `result` says why."""
    result: str
    """What the appliance answered."""
    path: str
    """How the call was decided: fast, llm, button, mqtt or api."""


@dataclass(frozen=True, kw_only=True)
class IntentRecognized(Event):
    type: ClassVar[str] = "intent"
    intent: str
    """The sentence library's intent (HassTurnOn, HassStartTimer, …) or one of ours
    (ApplianceCalculate, ApplianceConfirm)."""
    slots: dict[str, Any]
    """The slot values it matched: name, area, brightness, seconds, …"""
    score: float
    """How sure the match is, 0–1: 1 for a sentence the library matched as it was said,
    less for a fuzzy one (a misheard name or word); 0 for the language model's call, which
    has no score (it was checked against the words instead)."""
    path: str
    """library (matched as said), fuzzy (matched after correcting a misheard word or name),
    confirm (a middling match: asked about first) or model (the language model's call)."""
    text: str
    """The sentence that was matched (after correction, for a fuzzy match)."""
    evidence: str = ""
    """For a corrected sentence weighed against the audio: how far below the transcript
    whisper found it, and how far above the next sentence that means something else."""


@dataclass(frozen=True, kw_only=True)
class Timer(Event):
    type: ClassVar[str] = "timer"
    timer_id: int
    name: str
    """The timer's name ("" for an unnamed one)."""
    state: str
    """set, restored (running again after a restart), cancelled, fired, paused (stopped
    with its time left kept, also after a restart; `ends_at` is when it would have ended),
    resumed (counting down again, `ends_at` moved) or changed (lengthened or shortened:
    `seconds` is the new total, `ends_at` the new end)."""
    seconds: float
    """The timer's total duration."""
    ends_at: float
    """Unix time when it ends (or ended)."""


class ConfigFallback(Event):
    type: ClassVar[str] = "config_fallback"
    path: str
    """The config file that was found broken at start."""
    used: str
    """backup (its .bak, the last good version) or defaults."""
    message: str


EVENT_TYPES: tuple[type[Event], ...] = (
    RoomDecision,
    RoomConflict,
    RemoteState,
    StageFallback,
    SatelliteServing,
    ModelPlanned,
    Ready,
    StateChanged,
    Wake,
    SpeechStart,
    SpeechEnd,
    EndOfTurn,
    EndOfTurnFallback,
    Transcript,
    LlmFirstToken,
    ReplySentence,
    TtsFirstAudio,
    Reply,
    Interrupted,
    FollowUp,
    Handled,
    Announcement,
    Muted,
    TurnEnd,
    Error,
    VisionLooked,
    IntentRecognized,
    Action,
    Timer,
    ConfigFallback,
)


def to_dict(event: Event) -> dict[str, Any]:
    data = dataclasses.asdict(event)
    return {"type": event.type, **data}


def to_json(event: Event) -> str:
    return json.dumps(to_dict(event), ensure_ascii=False)


EventHandler = Callable[[Event], None]


class EventBus:
    """Fan-out of events to synchronous handlers.

    A handler that raises is logged and kept; one broken subscriber never stops a turn.
    """

    def __init__(self) -> None:
        self._handlers: list[EventHandler] = []

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    def publish(self, event: Event) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:
                _LOGGER.exception("event handler %r failed on %s", handler, event.type)


class JsonLinesWriter:
    """Writes each event as one JSON object per line, flushed at once."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: Event) -> None:
        self._stream.write(to_json(event) + "\n")
        self._stream.flush()
