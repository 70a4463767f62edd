"""Audio sinks: where the spoken reply goes. The speaker sink lives in devices.py."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from appliance.audio.format import resample
from appliance.audio.wav import write_wav


class AudioSink(Protocol):
    async def play(self, samples: np.ndarray, rate: int) -> None:
        """Queue int16 mono audio for output; returns before it has been heard."""

    async def drain(self) -> None:
        """Wait until everything queued has been played."""


class NullSink:
    async def play(self, samples: np.ndarray, rate: int) -> None:
        return None

    async def drain(self) -> None:
        return None


class RecordingSink:
    """Keeps every reply in memory, one list of blocks per turn, to save as WAV."""

    def __init__(self) -> None:
        self.blocks: list[tuple[np.ndarray, int]] = []

    async def play(self, samples: np.ndarray, rate: int) -> None:
        self.blocks.append((np.asarray(samples, dtype=np.int16), rate))

    async def drain(self) -> None:
        return None

    @property
    def seconds(self) -> float:
        return sum(len(b) / r for b, r in self.blocks)

    def audio(self) -> tuple[np.ndarray, int]:
        """Everything played so far, at the rate of the first block."""
        if not self.blocks:
            return np.zeros(0, dtype=np.int16), 22050
        rate = self.blocks[0][1]
        parts = []
        for samples, block_rate in self.blocks:
            if block_rate != rate:
                samples = (resample(samples / 32768.0, block_rate, rate) * 32767).astype(np.int16)
            parts.append(samples)
        return np.concatenate(parts), rate

    def save(self, path: Path) -> float:
        samples, rate = self.audio()
        write_wav(path, samples, rate)
        return len(samples) / rate


class TeeSink:
    """Sends the same audio to several sinks (e.g. the speaker and a reply WAV)."""

    def __init__(self, *sinks: AudioSink) -> None:
        self.sinks = sinks

    async def play(self, samples: np.ndarray, rate: int) -> None:
        for sink in self.sinks:
            await sink.play(samples, rate)

    async def drain(self) -> None:
        for sink in self.sinks:
            await sink.drain()
