"""Making test recordings: spoken phrases with pauses, at 16 kHz mono int16.

Used by the end-to-end tests, the benchmark, and to make the demo sample. Speech comes
from a TextToSpeech engine (Piper) or from Debian's espeak-ng, a different voice, so the
tests do not only hear the voice the appliance itself speaks with.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from appliance.audio.format import PIPELINE_RATE, float_to_int16, resample, silence
from appliance.audio.wav import load_for_pipeline
from appliance.tts.base import TextToSpeech


def tts_phrase(tts: TextToSpeech, text: str) -> np.ndarray:
    audio = tts.synthesize(text)
    return float_to_int16(resample(audio / 32768.0, tts.sample_rate, PIPELINE_RATE))


def espeak_phrase(
    text: str, *, voice: str = "en-us", speed: int = 150, pitch: int = 50
) -> np.ndarray:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "phrase.wav"
        subprocess.run(
            [espeak, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text],
            check=True,
            capture_output=True,
        )
        return load_for_pipeline(out)


def compose(*parts: np.ndarray | float) -> np.ndarray:
    """Join phrases (int16 arrays) and pauses (seconds, as floats) into one recording."""
    pieces = [silence(p) if isinstance(p, float | int) else p for p in parts]
    return np.concatenate(pieces).astype(np.int16)


def add_noise(samples: np.ndarray, dbfs: float = -50.0, seed: int = 0) -> np.ndarray:
    """Low background noise, so silence is not digital zero (as no real mic gives)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 10 ** (dbfs / 20) * 32768, size=len(samples))
    return np.clip(samples + noise, -32768, 32767).astype(np.int16)


DEMO_TEXT = ("Hey Jarvis.", "What is the capital of France?")


def make_demo_sample(tts: TextToSpeech, path: Path) -> None:
    """The request `appliance demo` plays, made with our own Piper voice."""
    from appliance.audio.wav import write_wav

    wake, question = (tts_phrase(tts, text) for text in DEMO_TEXT)
    write_wav(path, add_noise(compose(0.5, wake, 0.4, question, 1.0)), PIPELINE_RATE)
    path.with_suffix(".txt").write_text(" … ".join(DEMO_TEXT) + "\n", "utf-8")
