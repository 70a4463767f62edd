"""Audio sinks: where the spoken reply goes.

A sink that plays in real time (a speaker, or `ClockSink`, a virtual speaker that keeps
the same pace with no device) does it from its own thread in 20 ms blocks, so that
`interrupt()` silences it within one block: interrupts do not wait behind queued audio.
It also logs what it played, on the monotonic clock and at 16 kHz, which is the
reference the echo canceller subtracts from the microphone.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from pathlib import Path
from typing import Protocol

import numpy as np

from appliance.audio.format import PIPELINE_RATE, float_to_int16, int16_to_float, resample
from appliance.audio.wav import write_wav


class AudioSink(Protocol):
    async def play(self, samples: np.ndarray, rate: int) -> None:
        """Queue int16 mono audio for output; returns before it has been heard."""

    async def drain(self) -> None:
        """Wait until everything queued has been played (or interrupted)."""

    def interrupt(self) -> None:
        """Stop at once and drop everything queued. Safe from any thread."""

    def played_seconds(self) -> float:
        """Seconds of audio actually played since the sink was made."""

    def played_before(self, end: float, samples: int) -> np.ndarray:
        """The last `samples` (16 kHz int16) it played up to monotonic time `end`, zeros
        where it played nothing: what the microphone heard of it then (the echo
        canceller's reference). Zeros for a sink that plays to no room."""


class NullSink:
    def __init__(self) -> None:
        self._played = 0.0

    async def play(self, samples: np.ndarray, rate: int) -> None:
        self._played += len(samples) / rate

    async def drain(self) -> None:
        return None

    def interrupt(self) -> None:
        return None

    def played_seconds(self) -> float:
        return self._played

    def played_before(self, end: float, samples: int) -> np.ndarray:
        return np.zeros(samples, dtype=np.int16)


class RecordingSink:
    """Keeps every reply in memory, to save as WAV. Not real time: "plays" instantly."""

    def __init__(self) -> None:
        self.blocks: list[tuple[np.ndarray, int]] = []

    async def play(self, samples: np.ndarray, rate: int) -> None:
        self.blocks.append((np.asarray(samples, dtype=np.int16), rate))

    async def drain(self) -> None:
        return None

    def interrupt(self) -> None:
        return None

    def played_seconds(self) -> float:
        return self.seconds

    def played_before(self, end: float, samples: int) -> np.ndarray:
        return np.zeros(samples, dtype=np.int16)  # "played" into a file, not a room

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
                samples = float_to_int16(resample(int16_to_float(samples), block_rate, rate))
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

    def interrupt(self) -> None:
        for sink in self.sinks:
            sink.interrupt()

    def played_seconds(self) -> float:
        return max((s.played_seconds() for s in self.sinks), default=0.0)

    def played_before(self, end: float, samples: int) -> np.ndarray:
        heard = np.zeros(samples, dtype=np.int32)
        for sink in self.sinks:
            heard += sink.played_before(end, samples)
        return heard.clip(-32768, 32767).astype(np.int16)


class PlaybackLog:
    """What was played, as 16 kHz blocks stamped with the monotonic time they started."""

    def __init__(self, keep_seconds: float = 10.0) -> None:
        self._blocks: deque[tuple[float, np.ndarray]] = deque()
        self._keep = keep_seconds
        self._lock = threading.Lock()

    def add(self, started: float, samples16k: np.ndarray) -> None:
        with self._lock:
            self._blocks.append((started, samples16k))
            while self._blocks and self._blocks[0][0] < started - self._keep:
                self._blocks.popleft()

    def window(self, end: float, n: int) -> np.ndarray:
        """The `n` samples played up to time `end` (zeros where nothing played)."""
        out = np.zeros(n, dtype=np.int16)
        start = end - n / PIPELINE_RATE
        with self._lock:
            # Newest first, and only as far back as the window: this runs for every
            # 80 ms of microphone audio while the appliance speaks.
            recent = []
            for block_start, samples in reversed(self._blocks):
                if block_start + len(samples) / PIPELINE_RATE <= start:
                    break
                recent.append((block_start, samples))
        for block_start, samples in recent:
            if block_start >= end:
                continue
            src0 = max(0, int(round((start - block_start) * PIPELINE_RATE)))
            dst0 = max(0, int(round((block_start - start) * PIPELINE_RATE)))
            count = min(len(samples) - src0, n - dst0)
            if count > 0:
                out[dst0 : dst0 + count] = samples[src0 : src0 + count]
        return out


class RealTimeSink:
    """Plays queued audio from a thread in 20 ms blocks; the base of the speaker sink and
    of `ClockSink`. Subclasses write one block with `_output`."""

    BLOCK_SECONDS = 0.02

    def __init__(self, log: PlaybackLog | None = None, *, name: str = "sink") -> None:
        self.log = log or PlaybackLog()
        self._queue: deque[tuple[np.ndarray, np.ndarray, int]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self._generation = 0
        self._played = 0.0
        self._logged_until = 0.0
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def play(self, samples: np.ndarray, rate: int) -> None:
        samples = np.asarray(samples, dtype=np.int16)
        reference = float_to_int16(resample(int16_to_float(samples), rate, PIPELINE_RATE))
        with self._cond:
            self._queue.append((samples, reference, rate))
            self._cond.notify()

    async def drain(self) -> None:
        while True:
            with self._cond:
                if (not self._queue and not self._busy) or self._closed:
                    return
            await asyncio.sleep(0.01)

    def interrupt(self) -> None:
        with self._cond:
            self._queue.clear()
            self._generation += 1  # the block loop notices within one block

    def played_seconds(self) -> float:
        return self._played

    def played_before(self, end: float, samples: int) -> np.ndarray:
        return self.log.window(end, samples)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify()
        self._thread.join(timeout=2)

    def _open(self) -> None:
        return None

    def _output(self, block: np.ndarray, rate: int) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        return None

    def _run(self) -> None:
        try:
            self._open()
            while True:
                with self._cond:
                    while not self._queue and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    samples, reference, rate = self._queue.popleft()
                    generation = self._generation
                    self._busy = True
                try:
                    self._play_one(samples, reference, rate, generation)
                except Exception as err:  # a device that went away: report, keep the loop
                    self.error = err
                finally:
                    with self._cond:
                        self._busy = False
        finally:
            self._finish()

    def _play_one(self, samples: np.ndarray, reference: np.ndarray, rate: int, gen: int) -> None:
        step = int(rate * self.BLOCK_SECONDS)
        ref_step = int(PIPELINE_RATE * self.BLOCK_SECONDS)
        for index, offset in enumerate(range(0, len(samples), step)):
            if self._generation != gen or self._closed:
                return
            block = samples[offset : offset + step]
            # Logged as it starts: the echo canceller's reference must not lag the sound.
            ref = reference[index * ref_step : (index + 1) * ref_step]
            self.log.add(self._log_time(len(block) / rate), ref)
            self._output(block, rate)
            self._played += len(block) / rate

    def _log_time(self, seconds: float) -> float:
        """Where this block goes in the playback log: right after the previous one while
        playing continues (the speaker's samples are continuous; the thread's wake-ups
        are not), at the current time after a pause or an underrun (50 ms late)."""
        now = time.monotonic()
        started = self._logged_until
        if not now - 0.05 <= started <= now + 0.5:
            started = now
        self._logged_until = started + seconds
        return started


class ClockSink(RealTimeSink):
    """A virtual speaker: takes as long to "play" as a real one, with no device. For
    benchmarks and for tests of barge-in and of the appliance hearing itself."""

    BUFFER_SECONDS = 0.06
    """Like a sound card's buffer, it takes blocks ahead of playing them: a late thread
    wake-up does not break the sound (nor the log the echo canceller reads)."""

    def __init__(self, log: PlaybackLog | None = None) -> None:
        super().__init__(log, name="clock-sink")

    def _output(self, block: np.ndarray, rate: int) -> None:
        # The block was logged as playing until `_logged_until`: return once the buffer
        # has room, i.e. when that is no more than BUFFER_SECONDS ahead.
        delay = self._logged_until - self.BUFFER_SECONDS - time.monotonic()
        if delay > 0:
            time.sleep(delay)
