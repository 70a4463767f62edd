"""The one audio format the engines use (16 kHz mono int16) and conversion into it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PIPELINE_RATE = 16_000
"""Sample rate every engine in the listening path expects."""


@dataclass(frozen=True)
class AudioChunk:
    """A block of 16 kHz mono int16 audio and where it sits in the input stream."""

    samples: np.ndarray
    start: float
    """Seconds from the start of the input stream to the first sample."""
    rate: int = PIPELINE_RATE
    captured_at: float = 0.0
    """Monotonic time its last sample was captured (live sources; 0 for files). The echo
    canceller's reference is what the speaker played up to this moment."""

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate

    @property
    def end(self) -> float:
        return self.start + self.duration


def to_mono(frames: np.ndarray) -> np.ndarray:
    """Average the channels of a (samples, channels) float array."""
    if frames.ndim == 1:
        return frames
    return frames.mean(axis=1)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling of a whole float signal in the frequency domain.

    numpy only: scipy.signal would cost ~80 MB of RSS and 0.7 s of start-up on a Pi for
    this one call. The signal is padded before the FFT so its ends do not wrap around.
    """
    if src_rate == dst_rate or len(samples) == 0:
        return np.asarray(samples, dtype=np.float32)
    pad = src_rate // 20  # 50 ms of silence each side
    padded = np.pad(np.asarray(samples, dtype=np.float64), (pad, pad))
    n_out = int(round(len(padded) * dst_rate / src_rate))
    spectrum = np.fft.rfft(padded)
    kept = np.zeros(n_out // 2 + 1, dtype=complex)
    bins = min(len(spectrum), len(kept))
    kept[:bins] = spectrum[:bins]
    out = np.fft.irfft(kept, n_out) * (n_out / len(padded))
    trim = int(round(pad * dst_rate / src_rate))
    wanted = int(round(len(samples) * dst_rate / src_rate))
    return out[trim : trim + wanted].astype(np.float32)


def float_to_int16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)


def int16_to_float(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0


def silence(seconds: float, rate: int = PIPELINE_RATE) -> np.ndarray:
    return np.zeros(int(round(seconds * rate)), dtype=np.int16)
