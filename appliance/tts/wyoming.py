"""Text-to-speech on another machine, as a Wyoming service (`tts.remote`): for example
`wyoming-piper` on a bigger box, or another appliance's `serve-wyoming`. Its audio comes
back in whatever format the service makes; it is converted to the local voice's rate, so
that the two can take turns within one reply."""

from __future__ import annotations

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.tts import Synthesize, SynthesizeVoice

from appliance.audio.format import resample
from appliance.errors import TextToSpeechError
from appliance.transport.wyoming import Address, Exchange, WyomingFailure, missing

_DTYPES = {1: np.uint8, 2: np.dtype("<i2"), 4: np.dtype("<i4")}
_FULL_SCALE = {1: 128.0, 2: 32768.0, 4: 2147483648.0}


class RemoteTtsError(TextToSpeechError):
    code = "tts_remote"


def to_local(pcm: bytes, rate: int, width: int, channels: int, wanted_rate: int) -> np.ndarray:
    """The service's PCM as mono int16 at `wanted_rate`. Raises ValueError for a format
    that is no PCM this knows (a sample width other than 1, 2 or 4 bytes)."""
    if width not in _DTYPES:
        raise ValueError(f"{width}-byte samples")
    if channels < 1 or rate < 1000:
        raise ValueError(f"{channels} channels at {rate} Hz")
    usable = len(pcm) - len(pcm) % (width * channels)
    samples = np.frombuffer(pcm[:usable], dtype=_DTYPES[width]).astype(np.float64)
    if width == 1:
        samples -= 128.0  # 8-bit WAV is unsigned
    samples = samples.reshape(-1, channels).mean(axis=1) / _FULL_SCALE[width]
    out = resample(samples.astype(np.float32), rate, wanted_rate)
    return (np.clip(out, -1.0, 1.0) * 32767).astype(np.int16)


class WyomingTts:
    def __init__(
        self,
        uri: str,
        *,
        sample_rate: int,
        voice: str = "",
        timeout: float = 3.0,
        deadline: float = 15.0,
    ) -> None:
        """`sample_rate`: the rate this returns (the local voice's, for the speaker)."""
        self.where = Address.parse(uri)
        self.sample_rate = sample_rate
        self.voice = voice
        self.timeout = timeout
        self.deadline = deadline

    def health(self) -> str | None:
        return missing(self.where, "tts", timeout=self.timeout)

    def set_length_scale(self, length_scale: float) -> None:
        """The service speaks at its own rate: nothing to set here."""

    def synthesize(self, text: str) -> np.ndarray:
        voice = SynthesizeVoice(name=self.voice) if self.voice else None
        segments: list[tuple[tuple[int, int, int], bytearray]] = []  # one per format
        try:
            with Exchange(self.where, timeout=self.timeout, deadline=self.deadline) as link:
                link.send([Synthesize(text=text, voice=voice).event()])
                for event in link.events():
                    if AudioChunk.is_type(event.type):
                        chunk = AudioChunk.from_event(event)
                        fmt = (chunk.rate, chunk.width, chunk.channels)
                        if not segments or segments[-1][0] != fmt:
                            segments.append((fmt, bytearray()))
                        segments[-1][1].extend(chunk.audio)
                    elif AudioStop.is_type(event.type):
                        break
                    elif event.type == "error":
                        raise WyomingFailure(
                            f"{self.where} failed: {event.data.get('text', 'no reason given')}"
                        )
                    elif not AudioStart.is_type(event.type):
                        continue  # synthesize-stopped, …: nothing to play
                clips = [self._converted(bytes(pcm), *fmt) for fmt, pcm in segments]
        except WyomingFailure as err:
            raise RemoteTtsError(str(err)) from None
        if not clips:
            raise RemoteTtsError(f"{self.where} sent no audio for {text!r}")
        return np.concatenate(clips)

    def _converted(self, pcm: bytes, rate: int, width: int, channels: int) -> np.ndarray:
        try:
            return to_local(pcm, rate, width, channels, self.sample_rate)
        except ValueError as err:
            raise WyomingFailure(f"{self.where} sent audio this cannot play ({err})") from None
