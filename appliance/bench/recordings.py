"""The recordings of `appliance bench --only understanding`: each phrase spoken by Piper or
an espeak-ng voice, with silence around it, over pink or babble noise when the test set
says so."""

from __future__ import annotations

import numpy as np

from appliance.audio.format import PIPELINE_RATE
from appliance.bench.testset import VOICES
from appliance.pipeline import Engines
from appliance.testing.speech import add_noise, compose, espeak_phrase, tts_phrase

PAUSE_BEFORE, PAUSE_AFTER = 0.4, 0.6
"""Seconds of silence around each phrase (the end-pointer's pre-roll and hang-over)."""


def pink_noise(samples: int, seed: int = 0) -> np.ndarray:
    """Pink (1/f) noise of unit RMS: white noise shaped by 1/sqrt(f) in the frequency
    domain (a room's hum and fans are closer to pink than to white)."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.normal(size=samples))
    freqs = np.fft.rfftfreq(samples, 1 / PIPELINE_RATE)
    spectrum[1:] /= np.sqrt(freqs[1:] / freqs[1])
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=samples)
    return noise / (np.sqrt(np.mean(noise**2)) or 1.0)


_BABBLE_TEXTS = (
    ("We went to the market on Saturday and bought far too many apples.", "en-us"),
    ("Honestly I think the train was late again this morning, as usual.", "en-gb"),
    ("Can you pass me the salt, and did anyone call your mother back?", "en-us+f3"),
    ("The football match last night went on for ages before anyone scored.", "en-gb-scotland"),
    ("She said the new office is much bigger but the coffee is terrible.", "en-us+m3"),
)


def babble_noise(samples: int, seed: int = 0) -> np.ndarray:
    """Several voices talking at once, of unit RMS: espeak-ng sentences played backwards
    (speech's spectrum and rhythm, but no words whisper could write down), each looped
    from its own offset, summed."""
    rng = np.random.default_rng(seed)
    total = np.zeros(samples)
    for text, voice in _BABBLE_TEXTS:
        talk = espeak_phrase(text, voice=voice, speed=165)[::-1].astype(np.float64)
        talk /= np.sqrt(np.mean(talk**2)) or 1.0
        start = int(rng.integers(0, len(talk)))
        looped = np.resize(np.roll(talk, -start), samples)
        total += looped
    return total / (np.sqrt(np.mean(total**2)) or 1.0)


def with_noise(
    recording: np.ndarray, noise: np.ndarray, snr_db: float, phrase: np.ndarray
) -> np.ndarray:
    """`recording` (int16: `phrase` with silence around it) plus `noise` (unit RMS)
    `snr_db` below the phrase's own level."""
    level = float(np.sqrt(np.mean(phrase.astype(np.float64) ** 2))) if len(phrase) else 1000.0
    mixed = recording + noise[: len(recording)] * level / 10 ** (snr_db / 20)
    return np.clip(mixed, -32768, 32767).astype(np.int16)


def speak(engines: Engines, text: str, voice: str) -> np.ndarray:
    spec = VOICES[voice]
    if spec.engine == "piper":
        return tts_phrase(engines.tts, text)
    return espeak_phrase(text, voice=spec.name, speed=spec.speed, pitch=spec.pitch)


class Recorder:
    """Speaks the test set's phrases with their voice and noise."""

    def __init__(self, engines: Engines) -> None:
        self.engines = engines
        self._noise: dict[str, np.ndarray] = {}

    def record(self, text: str, voice: str, noise: str, snr_db: float, seed: int) -> np.ndarray:
        phrase = speak(self.engines, text, voice)
        recording = compose(PAUSE_BEFORE, phrase, PAUSE_AFTER)
        if not noise:
            return add_noise(recording, seed=seed)
        source = self._noise_of(noise)
        offset = (seed * 7919) % (len(source) - len(recording))
        return with_noise(recording, source[offset:], snr_db, phrase)

    def _noise_of(self, kind: str) -> np.ndarray:
        if kind not in self._noise:
            samples = 60 * PIPELINE_RATE
            make = pink_noise if kind == "pink" else babble_noise
            self._noise[kind] = make(samples, seed=len(self._noise))
        return self._noise[kind]
