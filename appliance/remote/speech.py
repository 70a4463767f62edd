"""Speech-to-text and text-to-speech with a remote in front (`stt.remote`, `tts.remote`,
Wyoming services): each request goes there while it can, and to this board's engine when
it cannot, in the same turn."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import numpy as np

from appliance.errors import PipelineError
from appliance.remote.breaker import Breaker
from appliance.stt.base import (
    ListensLive,
    LiveTranscription,
    PhraseScorer,
    Relistener,
    SpeechToText,
)
from appliance.tts.base import TextToSpeech

T = TypeVar("T")


class Healthy(Protocol):
    def health(self) -> str | None: ...


class _RemoteFirst:
    def __init__(self, stage: str, breaker: Breaker, fell_back: Callable[[str, str], None]):
        self.stage = stage
        self.breaker = breaker
        self._fell_back = fell_back
        self.last_remote = False
        """Whether the last request was answered by the remote."""

    def call(self, remote: Callable[[], T], local: Callable[[], T]) -> T:
        if self.breaker.allows():
            try:
                result = remote()
            except PipelineError as err:  # the remote clients' errors are the stage's
                self.breaker.failed(str(err))
                self._fell_back(self.stage, str(err))
            else:
                self.breaker.succeeded()
                self.last_remote = True
                return result
        self.last_remote = False
        return local()


class FallbackStt(_RemoteFirst):
    """A SpeechToText, and a LiveStt when the remote listens live (Wyoming's does): the
    request's audio then goes there while it is heard. Scoring phrases and listening
    again (the understanding's second listen) need the audio, which only this board's
    whisper keeps: after a remote transcript they answer None, "that audio is gone",
    and the understanding goes on without them."""

    def __init__(self, remote: SpeechToText, local: SpeechToText, breaker: Breaker,
                 fell_back: Callable[[str, str], None]) -> None:  # fmt: skip
        super().__init__("stt", breaker, fell_back)
        self.remote = remote
        self.local = local
        self._lock = threading.Lock()
        self._live: LiveTranscription | None = None
        self.live_used = 0
        """Transcripts that came from audio sent while it was heard."""

    def begin_live(self, heard: np.ndarray) -> None:
        self.end_live()
        # `allows` may run a health check, which blocks; while down, nothing is sent.
        if isinstance(self.remote, ListensLive) and self.breaker.up is not False:
            live = self.remote.listen(heard)
            with self._lock:
                self._live = live

    def feed_live(self, samples: np.ndarray) -> None:
        with self._lock:
            live = self._live
        if live is not None:
            live.feed(samples)

    def end_live(self) -> None:
        with self._lock:
            live, self._live = self._live, None
        if live is not None:
            live.cancel()

    def transcribe(self, audio: np.ndarray, prompt: str = "") -> str:
        with self._lock:
            live, self._live = self._live, None

        def remote() -> str:
            text = live.finish(audio) if live is not None else None
            if text is None:
                return self.remote.transcribe(audio, prompt)
            self.live_used += 1
            return text

        try:
            return self.call(remote, lambda: self.local.transcribe(audio, prompt))
        finally:
            if live is not None:
                live.cancel()  # when the breaker kept the turn local

    def score(self, heard: str, texts: Sequence[str]) -> list[float] | None:
        if self.last_remote or not isinstance(self.local, PhraseScorer):
            return None
        return self.local.score(heard, texts)

    def relisten(self, heard: str, prompt: str) -> str | None:
        if self.last_remote or not isinstance(self.local, Relistener):
            return None
        return self.local.relisten(heard, prompt)


class FallbackTts(_RemoteFirst):
    """A TextToSpeech at the local voice's rate (the remote's audio is converted to it),
    so that a reply may be spoken partly by each."""

    def __init__(self, remote: TextToSpeech, local: TextToSpeech, breaker: Breaker,
                 fell_back: Callable[[str, str], None]) -> None:  # fmt: skip
        super().__init__("tts", breaker, fell_back)
        self.remote = remote
        self.local = local

    @property
    def sample_rate(self) -> int:
        return self.local.sample_rate

    def synthesize(self, text: str) -> np.ndarray:
        return self.call(lambda: self.remote.synthesize(text),
                         lambda: self.local.synthesize(text))  # fmt: skip

    def set_length_scale(self, length_scale: float) -> None:
        self.local.set_length_scale(length_scale)
