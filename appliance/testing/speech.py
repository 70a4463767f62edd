"""Making test recordings: spoken phrases with pauses, at 16 kHz mono int16.

Used by the end-to-end tests, the benchmark, and to make the demo sample. Speech comes
from a TextToSpeech engine (Piper) or from Debian's espeak-ng, a different voice, so the
tests do not only hear the voice the appliance itself speaks with.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.audio.format import PIPELINE_RATE, float_to_int16, resample, silence
from appliance.audio.wav import load_for_pipeline
from appliance.tts.base import TextToSpeech


def tts_phrase(tts: TextToSpeech, text: str) -> np.ndarray:
    audio = tts.synthesize(text)
    return float_to_int16(resample(audio / 32768.0, tts.sample_rate, PIPELINE_RATE))


def espeak_phrase(
    text: str, *, voice: str = "en-us", speed: int = 150, pitch: int = 50, ssml: bool = False
) -> np.ndarray:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "phrase.wav"
        subprocess.run(
            [
                espeak,
                *(["-m"] if ssml else []),
                "-v",
                voice,
                "-s",
                str(speed),
                "-p",
                str(pitch),
                "-w",
                str(out),
                text,
            ],  # fmt: skip
            check=True,
            capture_output=True,
        )
        return load_for_pipeline(out)


SILENT_PEAK = 300
"""int16 peak below which a 10 ms frame counts as silence."""


def _loud_frames(samples: np.ndarray) -> np.ndarray:
    frame = PIPELINE_RATE // 100
    usable = samples[: len(samples) // frame * frame].astype(np.int32)
    return np.abs(usable).reshape(-1, frame).max(axis=1) > SILENT_PEAK


def voiced_end(samples: np.ndarray) -> float:
    """Seconds to the end of the last 10 ms frame that is not silence."""
    loud = np.nonzero(_loud_frames(samples))[0]
    return 0.0 if len(loud) == 0 else (int(loud[-1]) + 1) / 100


def _longest_gap(samples: np.ndarray) -> tuple[int, int]:
    """Sample offsets of the longest silent run between voiced frames."""
    loud = _loud_frames(samples)
    voiced = np.nonzero(loud)[0]
    best = (0, 0)
    for before, after in zip(voiced[:-1], voiced[1:], strict=True):
        if after - before - 1 > best[1] - best[0]:
            best = (int(before) + 1, int(after))
    frame = PIPELINE_RATE // 100
    return best[0] * frame, best[1] * frame


@dataclass(frozen=True)
class PausedSentence:
    samples: np.ndarray
    resumes: float
    """Seconds into `samples` where speech resumes after the pause."""


def paused_sentence(
    first: str, second: str, pause: float, *, tts: TextToSpeech | None = None, voice: str = ""
) -> PausedSentence:
    """One sentence with a pause in the middle, spoken as a person who pauses does: the
    first half keeps the sentence's unfinished melody (two phrases spoken apart end
    like finished sentences). espeak-ng (`voice`) breaks inside the sentence with SSML;
    Piper (`tts`) speaks it with a comma there, whose gap is stretched to `pause`."""
    if tts is not None:
        whole = tts_phrase(tts, f"{first}, {second}")
    else:
        marked = f'{first} <break time="{int(pause * 1000)}ms"/> {second}'
        whole = espeak_phrase(marked, voice=voice or "en-us", ssml=True)
    start, end = _longest_gap(whole)
    if end - start < PIPELINE_RATE // 50:
        raise RuntimeError(f"no pause found in the spoken {first!r} … {second!r}")
    middle = (start + end) // 2
    added = max(0, int(pause * PIPELINE_RATE) - (end - start))
    samples = np.concatenate([whole[:middle], np.zeros(added, np.int16), whole[middle:]])
    return PausedSentence(samples.astype(np.int16), (end + added) / PIPELINE_RATE)


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
