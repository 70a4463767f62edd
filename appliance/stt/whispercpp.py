"""whisper.cpp through pywhispercpp, on a ggml model file from the models directory."""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path

import numpy as np

from appliance.errors import ModelError, SpeechToTextError

PROMPTED_AUDIO_CONTEXT = 512
"""The smallest encoder window used with a prompt (see `WhisperCppStt.transcribe`)."""

# Whisper writes these for non-speech; they are not a request.
_NON_SPEECH = re.compile(r"\[(?:BLANK_AUDIO|MUSIC|NOISE|SOUND|SILENCE)[^\]]*\]|\((?:[^)]*)\)", re.I)


def fitted_audio_context(samples: int, rate: int = 16_000) -> int:
    """Encoder frames for a clip: Whisper always encodes 30 s (1500 frames) unless told
    otherwise, which is most of the STT time for a 3 s request. Encoding just the clip
    plus a margin is 2–3× faster on short requests and transcribes them the same."""
    frames = math.ceil(samples / rate * 50) + 64
    return int(min(1500, max(256, math.ceil(frames / 64) * 64)))


def collapse_repeats(text: str, *, times: int = 3) -> str:
    """Whisper's decoding loop: a run of the same words said `times` or more times in a
    row ("Read this. Read this. Read this. Read this") is kept once, and so is a phrase
    said twice and then cut off by the token bound ("Turn on the light. Turn on the light.
    Turn on the"). A cut-off last repetition is dropped too."""
    words = text.split()
    keys = [w.strip(".,!?;:").lower() for w in words]
    at = 0
    while at < len(words):
        for size in range(1, (len(words) - at) // 2 + 1):
            unit = keys[at : at + size]
            end = at + size
            while keys[end : end + size] == unit:
                end += size
            rest = keys[end:]
            cut_off = bool(rest) and rest == unit[: len(rest)]  # stopped by the token bound
            repeats = (end - at) // size
            if repeats < times and not (repeats >= 2 and cut_off and size >= 2):
                continue
            if cut_off:
                end = len(words)
            del words[at + size : end], keys[at + size : end]
            break
        at += 1
    return " ".join(words)


def max_tokens_for(samples: int) -> int:
    """A bound on the tokens of one segment: 8 per second of audio, plus 8. Fast speech is
    about 4 tokens a second. Without it, whisper tiny can loop on a short clip ("Read
    this" → "Read this......"), and each loop's temperature fallback decodes it again:
    80 s for a 1 s request was seen."""
    return 8 + 8 * max(1, samples // 16_000)


class WhisperCppStt:
    def __init__(
        self,
        model_path: Path,
        *,
        threads: int,
        language: str = "en",
        fit_context: bool = True,
    ) -> None:
        try:
            from pywhispercpp.model import Model
        except ImportError as err:
            raise ModelError(f"pywhispercpp is not installed ({err}); run ./setup.sh") from err
        if not Path(model_path).is_file():
            # pywhispercpp treats an unknown name as a model to download: never let it.
            raise ModelError(f"whisper model {model_path} is missing; run ./setup.sh")
        try:
            self._model = Model(
                str(model_path),
                redirect_whispercpp_logs_to=None,
                n_threads=threads,
                language=language,
                print_progress=False,
                print_realtime=False,
                print_timestamps=False,
                no_context=True,
                single_segment=False,
                suppress_blank=True,
            )
        except Exception as err:
            raise ModelError(f"whisper.cpp cannot load {model_path}: {err}") from err
        self.fit_context = fit_context
        # One whisper context cannot run two transcriptions at once.
        self._lock = threading.Lock()

    def transcribe(self, audio: np.ndarray, prompt: str = "") -> str:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if len(audio) < 1600:
            return ""
        # whisper.cpp refuses clips shorter than 1 s; pad with silence.
        if len(audio) < 16_000:
            audio = np.pad(audio, (0, 16_000 - len(audio)))
        try:
            with self._lock:
                audio_ctx = fitted_audio_context(len(audio)) if self.fit_context else 0
                if prompt and audio_ctx:
                    # With a prompt, tiny.en in a 256-frame window wrote requests twice, lost
                    # their first words or copied the prompt (WER 29 % against 22 % without
                    # a prompt); at 512 frames and without timestamps, 12 %.
                    audio_ctx = max(PROMPTED_AUDIO_CONTEXT, audio_ctx)
                segments = self._model.transcribe(
                    audio,
                    audio_ctx=audio_ctx,
                    initial_prompt=prompt,
                    no_timestamps=bool(prompt),
                    max_tokens=max_tokens_for(len(audio)),
                )
        except Exception as err:
            raise SpeechToTextError(f"whisper.cpp failed: {err}") from err
        text = " ".join(segment.text.strip() for segment in segments)
        return collapse_repeats(" ".join(_NON_SPEECH.sub(" ", text).split()))
