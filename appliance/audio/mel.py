"""Whisper's log-mel spectrogram in numpy, for models built on Whisper's encoder.

Smart Turn (`audio/turn.py`) reads the features Whisper's own front end makes: 25 ms
Hann windows every 10 ms, a power spectrum, 80 mel bands on the Slaney scale with
area-normalised triangles, log10, clipped to 8 decades below the loudest value and
scaled to about [-1, 1]. Written from that description so that the appliance needs
neither torch nor transformers.
"""

from __future__ import annotations

from functools import cache

import numpy as np

RATE = 16_000
WINDOW = 400
HOP = 160
BANDS = 80


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mel per 200 Hz), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz * 3.0 / 200.0
    step = np.log(6.4) / 27.0
    return np.where(hz < 1000.0, linear, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / step)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    step = np.log(6.4) / 27.0
    return np.where(mel < 15.0, mel * 200.0 / 3.0, 1000.0 * np.exp((mel - 15.0) * step))


@cache
def mel_filters(bands: int = BANDS, window: int = WINDOW, rate: int = RATE) -> np.ndarray:
    """Triangles over the FFT bins, shape (bands, window // 2 + 1), each with unit area."""
    edges = _mel_to_hz(np.linspace(0.0, float(_hz_to_mel(np.array(rate / 2.0))), bands + 2))
    bins = np.linspace(0.0, rate / 2.0, window // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    triangles = np.clip(np.minimum(rising, falling), 0.0, None)
    return triangles * (2.0 / (upper - lower))


@cache
def _hann(window: int = WINDOW) -> np.ndarray:
    """The periodic Hann window (as torch.hann_window makes it)."""
    n = np.arange(window)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / window)


def log_mel(audio: np.ndarray, *, normalise: bool = True) -> np.ndarray:
    """Features of 16 kHz float audio, shape (80, len(audio) // 160).

    `normalise` first scales the waveform to zero mean and unit variance, as Smart Turn
    was trained."""
    x = np.asarray(audio, dtype=np.float32)
    if normalise:
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    half = WINDOW // 2
    padded = np.pad(x.astype(np.float64), (half, half), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[::HOP]
    power = np.abs(np.fft.rfft(frames * _hann(), axis=-1)) ** 2
    mel = np.log10(np.maximum(power @ mel_filters().T, 1e-10)).T[:, :-1]
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)
