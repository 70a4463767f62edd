"""`appliance serve-wyoming`: this board's speech-to-text, voice and wake word offered as
Wyoming services on one TCP port, described by `info` and announced over mDNS as
`_wyoming._tcp`. Another appliance can then use them (`stt.remote`, `tts.remote`), and so
can Home Assistant's Wyoming integration."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Describe,
    Info,
    TtsProgram,
    TtsVoice,
    WakeModel,
    WakeProgram,
)
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize
from wyoming.wake import Detect, Detection, NotDetected

from appliance.discovery.mdns import app_version

_LOGGER = logging.getLogger(__name__)
RATE = 16_000
CHUNK = 1_280
MAX_REQUEST_SECONDS = 60
"""Longest audio one transcribe request may send."""
_OURS = Attribution(name="voice appliance", url="https://github.com/")


@dataclass
class Served:
    """The engines offered, each used by one request at a time."""

    stt: Any
    tts: Any
    wake: Any | None
    stt_name: str
    voice_name: str
    language: str = "en"
    locks: dict[str, threading.Lock] = field(
        default_factory=lambda: {"stt": threading.Lock(), "tts": threading.Lock()}
    )
    wake_busy: bool = False

    def info(self) -> Info:
        version = app_version()
        asr = AsrProgram(
            name="appliance-whisper", attribution=_OURS, installed=True, version=version,
            description="whisper.cpp on this board",
            models=[AsrModel(name=self.stt_name, attribution=_OURS, installed=True,
                             description=self.stt_name, version=version,
                             languages=[self.language])],
        )  # fmt: skip
        tts = TtsProgram(
            name="appliance-piper", attribution=_OURS, installed=True, version=version,
            description="Piper on this board",
            voices=[TtsVoice(name=self.voice_name, attribution=_OURS, installed=True,
                             description=self.voice_name, version=version,
                             languages=[self.language])],
        )  # fmt: skip
        wake = []
        if self.wake is not None:
            phrase = self.wake.name.replace("_", " ")
            wake = [WakeProgram(
                name="appliance-openwakeword", attribution=_OURS, installed=True,
                version=version, description="openWakeWord on this board",
                models=[WakeModel(name=self.wake.name, attribution=_OURS, installed=True,
                                  description=phrase, version=version,
                                  languages=[self.language], phrase=phrase)],
            )]  # fmt: skip
        return Info(asr=[asr], tts=[tts], wake=wake)


class EngineHandler(AsyncEventHandler):
    """One client's connection: describe, transcribe, synthesize or detect."""

    def __init__(self, served: Served, *args: Any) -> None:
        super().__init__(*args)
        self.served = served
        self._mode = ""
        self._audio = bytearray()
        self._converter = AudioChunkConverter(rate=RATE, width=2, channels=1)
        self._pending = bytearray()  # wake: audio not yet a whole chunk
        self._samples_seen = 0
        self._detected = False

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self.served.info().event())
        elif Transcribe.is_type(event.type):
            self._mode, self._audio = "asr", bytearray()
        elif Detect.is_type(event.type):
            if self.served.wake is None:
                return await self._refuse("this board has no wake word detector", "no_wake")
            if self.served.wake_busy:
                return await self._refuse("the wake word detector serves one stream at a "
                                          "time; try again later", "busy")  # fmt: skip
            self.served.wake_busy = True
            self._mode, self._detected, self._samples_seen = "wake", False, 0
            self.served.wake.reset()
        elif AudioStart.is_type(event.type):
            self._audio, self._pending = bytearray(), bytearray()
        elif AudioChunk.is_type(event.type):
            return await self._chunk(self._converter.convert(AudioChunk.from_event(event)))
        elif AudioStop.is_type(event.type):
            return await self._stop()
        elif Synthesize.is_type(event.type):
            await self._synthesize(Synthesize.from_event(event).text)
        return True

    async def _refuse(self, text: str, code: str) -> bool:
        await self.write_event(Error(text=text, code=code).event())
        return True

    async def _chunk(self, chunk: AudioChunk) -> bool:
        if self._mode == "asr":
            self._audio += chunk.audio
            if len(self._audio) > MAX_REQUEST_SECONDS * RATE * 2:
                self._mode = ""
                return await self._refuse(
                    f"a request longer than {MAX_REQUEST_SECONDS} s is not transcribed",
                    "too_long",
                )
        elif self._mode == "wake" and not self._detected:
            self._pending += chunk.audio
            while len(self._pending) >= CHUNK * 2 and not self._detected:
                samples = np.frombuffer(bytes(self._pending[: CHUNK * 2]), dtype="<i2")
                del self._pending[: CHUNK * 2]
                self._samples_seen += CHUNK
                found = await asyncio.to_thread(self.served.wake.process, samples)
                if found is not None:
                    self._detected = True
                    millis = self._samples_seen * 1000 // RATE
                    await self.write_event(
                        Detection(name=found.wake_word, timestamp=millis).event()
                    )
        return True

    async def _stop(self) -> bool:
        if self._mode == "asr":
            audio = np.frombuffer(bytes(self._audio), dtype="<i2").astype(np.float32) / 32768
            try:
                text = await asyncio.to_thread(self._locked, "stt", self.served.stt.transcribe,
                                               audio)  # fmt: skip
            except Exception as err:  # said to the client; the service goes on
                _LOGGER.warning("transcription failed: %s", err)
                self._mode = ""
                return await self._refuse(f"transcription failed: {err}", "stt_failed")
            await self.write_event(Transcript(text=text).event())
        elif self._mode == "wake":
            if not self._detected:
                await self.write_event(NotDetected().event())
            self.served.wake_busy = False
        self._mode = ""
        return True

    async def _synthesize(self, text: str) -> None:
        tts = self.served.tts
        try:
            samples = await asyncio.to_thread(self._locked, "tts", tts.synthesize, text)
        except Exception as err:  # said to the client; the service goes on
            _LOGGER.warning("synthesis failed: %s", err)
            await self._refuse(f"synthesis failed: {err}", "tts_failed")
            return
        rate = tts.sample_rate
        pcm = np.asarray(samples, dtype="<i2").tobytes()
        await self.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        step = 1024 * 2
        for start in range(0, len(pcm), step):
            chunk = AudioChunk(rate=rate, width=2, channels=1, audio=pcm[start : start + step])
            await self.write_event(chunk.event())
        await self.write_event(AudioStop().event())

    def _locked(self, engine: str, fn: Any, *args: Any) -> Any:
        with self.served.locks[engine]:
            return fn(*args)

    async def disconnect(self) -> None:
        if self._mode == "wake":
            self.served.wake_busy = False
