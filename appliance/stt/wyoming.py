"""Speech-to-text on another machine, as a Wyoming service (`stt.remote`): for example
`wyoming-faster-whisper` on a bigger box, or another appliance's `serve-wyoming`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event

from appliance.errors import SpeechToTextError
from appliance.transport.wyoming import Address, Exchange, WyomingFailure, missing

RATE = 16_000
CHUNK_SAMPLES = 1_280  # 80 ms, as the microphone gives them


class RemoteSttError(SpeechToTextError):
    code = "stt_remote"


class WyomingStt:
    def __init__(
        self, uri: str, *, language: str = "", timeout: float = 3.0, deadline: float = 15.0
    ) -> None:
        self.where = Address.parse(uri)
        self.language = language
        self.timeout = timeout
        self.deadline = deadline

    def health(self) -> str | None:
        return missing(self.where, "asr", timeout=self.timeout)

    def transcribe(self, audio: np.ndarray, prompt: str = "") -> str:
        """`prompt` is not sent: Wyoming's transcribe request has no place for it."""
        samples = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
        try:
            with Exchange(self.where, timeout=self.timeout, deadline=self.deadline) as link:
                link.send(self._request(samples.tobytes()))
                for event in link.events():
                    if Transcript.is_type(event.type):
                        return Transcript.from_event(event).text.strip()
                    if event.type == "error":
                        raise WyomingFailure(
                            f"{self.where} failed: {event.data.get('text', 'no reason given')}"
                        )
        except WyomingFailure as err:
            raise RemoteSttError(str(err)) from None
        raise RemoteSttError(f"{self.where} sent no transcript")  # pragma: no cover

    def _request(self, pcm: bytes) -> Iterator[Event]:
        yield Transcribe(language=self.language or None).event()
        yield AudioStart(rate=RATE, width=2, channels=1).event()
        step = CHUNK_SAMPLES * 2
        for start in range(0, len(pcm), step):
            yield AudioChunk(
                rate=RATE, width=2, channels=1, audio=pcm[start : start + step]
            ).event()
        yield AudioStop().event()
