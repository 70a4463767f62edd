"""What a pipeline is made of (`Engines`, `PipelineSettings`) and what a turn gives
back (`TurnResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from appliance.audio.turn import TurnDetector
from appliance.audio.vad import EndpointSettings, VoiceActivityDetector
from appliance.handlers import Handled
from appliance.llm.base import LanguageModel
from appliance.pipeline.barge_in import STOP_PHRASES
from appliance.sections.conversation import ConversationConfig
from appliance.stt.base import SpeechToText
from appliance.tts.base import TextToSpeech
from appliance.wake.base import StopKeywordDetector, WakeWordDetector

APOLOGY = "Sorry, something went wrong. Please try again."


class State(StrEnum):
    """What the appliance is doing; each change is a `state` event (the config page's
    status, the MQTT state sensor, the status light)."""

    IDLE = "idle"
    """Waiting for the wake word."""
    LISTENING = "listening"
    """Capturing a request (after the wake word, the button, or a follow-up's speech)."""
    FOLLOW_UP = "follow_up"
    """Listening for an answer without the wake word, after a reply that asked."""
    THINKING = "thinking"
    """The request is over: speech-to-text, the handlers, the language model."""
    SPEAKING = "speaking"
    """A reply or an announcement is playing."""
    MUTED = "muted"
    """The microphone's audio is dropped."""
    ERROR = "error"
    """A stage failed; the apology is being said."""


@dataclass
class Engines:
    llm: LanguageModel
    tts: TextToSpeech
    wake: WakeWordDetector | None = None
    """The listening engines may be absent for typed requests (`appliance ask`)."""
    vad: VoiceActivityDetector | None = None
    stt: SpeechToText | None = None
    stop: StopKeywordDetector | None = None
    """The "stop" keyword head, fed the wake detector's speech embeddings while the
    appliance speaks; None leaves "stop" to the speech-to-text check."""
    turn: TurnDetector | None = None
    """The end-of-turn model asked at each pause; None ends requests after a fixed
    silence (`listen.silence_seconds`)."""
    turn_unavailable: str = ""
    """Why `turn` is None although it was asked for (published once at start)."""


@dataclass(frozen=True)
class Listening:
    wake: WakeWordDetector
    vad: VoiceActivityDetector
    stt: SpeechToText


@dataclass(frozen=True)
class PipelineSettings:
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    system_prompt: str = ""
    wake_phrase: str = "hey jarvis"
    """Words stripped from the start of a transcript when the pre-roll caught them."""
    conversation: ConversationConfig = field(default_factory=ConversationConfig)
    """Follow-up window, conversation memory, barge-in."""
    barge_in_threshold: float = 0.0
    """Wake score needed while speaking; 0 = the detector's own threshold with echo
    cancellation (while the double-talk gate is open), 0.85 without (the appliance's own
    voice reaches the microphone). See barge_in.barge_in_threshold."""
    stop_phrases: tuple[str, ...] = STOP_PHRASES
    earcons: bool = False
    """Short sounds on wake, at the end of listening and on an error (`appliance run`)."""
    first_clause_chars: int = 24
    """The language model's first sentence may be spoken from a clause this long (see
    `SentenceSplitter`); 0 = whole sentences only."""


@dataclass
class TurnResult:
    """What one turn produced; kept for `listen`, `demo` and the benchmark."""

    turn: int
    outcome: str = "replied"
    transcript: str = ""
    reply: str = ""
    sentences: list[str] = field(default_factory=list)
    utterance: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    reply_audio_seconds: float = 0.0
    handled: Handled | None = None
    """Set when a request handler answered instead of the language model."""
    false_claims_replaced: int = 0
    """Sentences of the LLM's free text that claimed an action (none ran: no handler took
    the request) and were replaced by what is true; the reply ended there."""
    reply_audio: list[np.ndarray] | None = None
    """The reply's audio as it was played, when asked for (`Pipeline.ask(keep_audio=True)`:
    the page's /api/ask?audio), so it is not synthesised twice."""
    reply_rate: int = 0
    """The sample rate of `reply_audio` (the voice's)."""
    handling: bool = False
    """The request handlers are deciding (one may be acting)."""
    remote_continues: bool = False
    """Another assistant answered (`pipeline.remote`) and expects an answer back."""
    committed: bool = False
    """Something that cannot be taken back happened: a handler acted, or reply audio
    began to play. Until then a turn ended at a pause is withdrawn if the speaker goes on
    (`Session._withdraw`)."""
