"""whisper.cpp on a ggml model file from the models directory, through its C API
(`whisper_lib`, on the library the pywhispercpp wheel ships).

Besides transcribing, the engine scores sentences against the audio it last transcribed
(`score`): the understanding stage uses that to tell which of the house's sentences was
said when the transcript is near one but not quite it (Speech-to-Phrase's idea)."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from appliance.errors import ModelError, SpeechToTextError
from appliance.stt.whisper_lib import FullParams, WhisperContext, load_library

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
        if not Path(model_path).is_file():
            raise ModelError(f"whisper model {model_path} is missing; run ./setup.sh")
        lib = load_library()
        try:
            self._whisper = WhisperContext(lib, Path(model_path), language=language)
        except ModelError:
            raise
        except Exception as err:
            raise ModelError(f"whisper.cpp cannot load {model_path}: {err}") from err
        self.threads = threads
        self.language = language
        self.fit_context = fit_context
        # One whisper state cannot run two transcriptions (or a transcription and a
        # scoring) at once.
        self._lock = threading.Lock()
        self._heard: str | None = None
        """The last transcript, while its audio's encoding is still in the state."""
        self._audio: np.ndarray | None = None
        """The audio of the last transcript (for `relisten`)."""

    def close(self) -> None:
        with self._lock:
            self._heard = None
            self._whisper.close()

    def _params(self, samples: int, prompt: str) -> FullParams:
        params = self._whisper.default_params()
        params.n_threads = self.threads
        params.language = self.language.encode()
        params.print_progress = params.print_timestamps = params.print_realtime = False
        params.no_context = True
        params.single_segment = False
        params.suppress_blank = True
        audio_ctx = fitted_audio_context(samples) if self.fit_context else 0
        if prompt and audio_ctx:
            # With a prompt, tiny.en in a 256-frame window wrote requests twice, lost
            # their first words or copied the prompt (WER 29 % against 22 % without
            # a prompt); at 512 frames and without timestamps, 12 %.
            audio_ctx = max(PROMPTED_AUDIO_CONTEXT, audio_ctx)
        params.audio_ctx = audio_ctx
        params.initial_prompt = prompt.encode() if prompt else None
        params.no_timestamps = bool(prompt)
        params.max_tokens = max_tokens_for(samples)
        return params

    def transcribe(self, audio: np.ndarray, prompt: str = "") -> str:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if len(audio) < 1600:
            return ""
        # whisper.cpp refuses clips shorter than 1 s; pad with silence.
        if len(audio) < 16_000:
            audio = np.pad(audio, (0, 16_000 - len(audio)))
        with self._lock:
            return self._transcribe(audio, prompt)

    def relisten(self, heard: str, prompt: str) -> str | None:
        """The audio last transcribed as `heard`, transcribed again with `prompt`; None
        when that audio is gone. Its scoring (`score`) is then of the new transcript."""
        with self._lock:
            if heard != self._heard or not heard or self._audio is None:
                return None
            return self._transcribe(self._audio, prompt)

    def _transcribe(self, audio: np.ndarray, prompt: str) -> str:
        try:
            self._heard, self._audio = None, None
            segments = self._whisper.full(self._params(len(audio), prompt), audio)
            text = " ".join(segment.strip() for segment in segments)
            text = collapse_repeats(" ".join(_NON_SPEECH.sub(" ", text).split()))
            self._heard, self._audio = text, audio
        except Exception as err:
            raise SpeechToTextError(f"whisper.cpp failed: {err}") from err
        return text

    def score(self, heard: str, texts: Sequence[str]) -> list[float] | None:
        """How likely each of `texts` is as what was said (the sum of its tokens' log
        probabilities), for the audio that was transcribed as `heard`; None when that
        audio is gone (another transcription since, or typed text)."""
        with self._lock:
            if heard != self._heard or not heard:
                return None
            if not texts:
                return []
            try:
                return self._whisper.sentence_logprobs(texts, threads=self.threads)
            except Exception as err:
                raise SpeechToTextError(f"whisper.cpp failed to score sentences: {err}") from err
