"""Speech-to-text on another machine, as a Wyoming service (`stt.remote`): for example
`wyoming-faster-whisper` on a bigger box, or another appliance's `serve-wyoming`.

A request's audio is sent while it is heard (`LiveRequest`), as Home Assistant sends a
Voice PE's: the service has it all when the turn ends."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event

from appliance.audio.format import int16_to_float
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
        try:
            with Exchange(self.where, timeout=self.timeout, deadline=self.deadline) as link:
                link.send(self.opening())
                link.send(self.chunks(_pcm(audio)))
                link.send([AudioStop().event()])
                return self.answer(link)
        except WyomingFailure as err:
            raise RemoteSttError(str(err)) from None

    def listen(self, heard: np.ndarray) -> LiveRequest:
        """A request that sends int16 `heard` now and what is fed to it next."""
        return LiveRequest(self, heard)

    def opening(self) -> list[Event]:
        return [Transcribe(language=self.language or None).event(),
                AudioStart(rate=RATE, width=2, channels=1).event()]  # fmt: skip

    def chunks(self, pcm: bytes) -> Iterable[Event]:
        step = CHUNK_SAMPLES * 2
        for start in range(0, len(pcm), step):
            yield AudioChunk(
                rate=RATE, width=2, channels=1, audio=pcm[start : start + step]
            ).event()

    def answer(self, link: Exchange) -> str:
        for event in link.events():
            if Transcript.is_type(event.type):
                return Transcript.from_event(event).text.strip()
            if event.type == "error":
                raise RemoteSttError(
                    f"{self.where} failed: {event.data.get('text', 'no reason given')}"
                )
        raise RemoteSttError(f"{self.where} sent no transcript")  # pragma: no cover


LONGEST_REQUEST = 60.0
"""Seconds a live request may stay open while it is heard (the end-pointer ends speech
long before)."""
TRAILING_SLACK = 2 * RATE
"""Samples the live request may have sent past the audio finally transcribed: the
silence the end-pointer waited through and then cut off."""
_CANCEL = object()


class LiveRequest:
    """A transcription whose audio goes to the service while it is heard.

    The connection opens at the start of speech, on a thread of its own, and each chunk
    is sent as it comes; when the turn ends, only the last bit and `AudioStop` are left
    to send. `finish` takes the audio the turn finally transcribes: when it is what was
    sent (give or take the trailing silence the end-pointer cut), the answer comes from
    this request; otherwise (None) the caller sends that audio the usual way."""

    def __init__(self, stt: WyomingStt, heard: np.ndarray) -> None:
        self._stt = stt
        self._lock = threading.Lock()
        self._sent: list[np.ndarray] = [heard]
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._queue.put(heard.astype("<i2").tobytes())
        self._answer: Future[str] = Future()
        self._link: Exchange | None = None
        self._closed = False
        threading.Thread(target=self._run, name="wyoming-stt-live", daemon=True).start()

    def feed(self, samples: np.ndarray) -> None:
        """Int16 samples heard after the last ones (from the event loop: never blocks)."""
        with self._lock:
            if self._closed:
                return
            self._sent.append(samples)
        self._queue.put(samples.astype("<i2").tobytes())

    def finish(self, audio: np.ndarray) -> str | None:
        """The transcript of float `audio` through this request, or None when `audio` is
        not what was sent. Blocking, within the client's deadline."""
        with self._lock:
            self._closed = True
            sent = int16_to_float(np.concatenate(self._sent))
        shared = min(len(sent), len(audio))
        if len(sent) - len(audio) > TRAILING_SLACK or \
                not np.array_equal(sent[:shared], audio[:shared]):  # fmt: skip
            self.cancel()
            return None
        self._queue.put(_pcm(audio[shared:]))
        self._queue.put(None)
        try:
            return self._answer.result(timeout=self._stt.deadline)
        except FutureTimeout:
            self.cancel()
            raise RemoteSttError(
                f"{self._stt.where} gave no transcript within {self._stt.deadline:g} s"
            ) from None

    def cancel(self) -> None:
        """Drop the request (the turn was dropped, or did not use it)."""
        with self._lock:
            self._closed = True
            link = self._link
        self._queue.put(_CANCEL)
        if link is not None:
            link.abort()  # a thread waiting for the transcript wakes now

    def _run(self) -> None:
        stt = self._stt
        try:
            with Exchange(stt.where, timeout=stt.timeout,
                          deadline=LONGEST_REQUEST + stt.deadline) as link:  # fmt: skip
                with self._lock:
                    self._link = link
                link.send(stt.opening())
                while (item := self._queue.get(timeout=LONGEST_REQUEST)) is not None:
                    if item is _CANCEL:
                        return
                    assert isinstance(item, bytes)
                    link.send(stt.chunks(item))
                link.send([AudioStop().event()])
                self._answer.set_result(stt.answer(link))
        except queue.Empty:
            self._answer.set_exception(RemoteSttError(
                f"no audio for {stt.where} in {LONGEST_REQUEST:g} s"))  # fmt: skip
        except (WyomingFailure, RemoteSttError) as err:
            self._answer.set_exception(RemoteSttError(str(err)))
        except Exception as err:  # whatever it is, the turn must not wait out the deadline
            self._answer.set_exception(RemoteSttError(f"{stt.where}: {err}"))


def _pcm(audio: np.ndarray) -> bytes:
    """Float audio as int16 bytes: the exact inverse of `int16_to_float`."""
    return np.round(np.clip(audio, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()
