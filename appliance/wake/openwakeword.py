"""openWakeWord: its three ONNX models run by our own streaming code.

openWakeWord scores audio in three steps: a mel-spectrogram model (32 bands, 10 ms hop),
Google's speech-embedding model over the last 76 mel frames (one 96-value embedding per
80 ms), and the wake-word classifier over the last 16 embeddings (~1.3 s). The
`openwakeword` package does exactly this, but importing it pulls in scikit-learn and
scipy.signal for its training helpers: +110 MB of RSS and +0.9 s of start-up on a Pi for
code we never call. So the steps are run here on onnxruntime directly, and a test checks
that the scores equal the package's on the same audio.

Digital silence (exact zeros: a muted or absent microphone) is not run through the
models again once its mel frames, embedding and score are known; the scores stay the
package's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from appliance.errors import ModelError
from appliance.wake.base import Detection

CHUNK = 1280
"""80 ms at 16 kHz: one embedding, one score."""
_MEL_CONTEXT = 480
"""Samples of the previous chunk the mel model sees again (its 25 ms window overlap)."""
_MEL_FRAMES = 76
_WARM_UP_SCORES = 5
"""openWakeWord reports 0 for its first five scores after a start or reset."""
_COOLDOWN_CHUNKS = 10
"""A detection's score stays high for a few chunks: report it once."""


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as err:
        raise ModelError(f"cannot load wake word model {path}: {err}") from err


class SpeechEmbeddings:
    """openWakeWord's first two steps, streamed: 80 ms of audio in, one 96-value speech
    embedding out. Shared by the wake word and the "stop" keyword heads, which read the
    last few embeddings (`recent`)."""

    def __init__(
        self, melspectrogram_path: Path, embedding_path: Path, *, threads: int = 1, keep: int = 16
    ) -> None:
        self._mel_model = _session(melspectrogram_path, threads)
        self._embedding_model = _session(embedding_path, threads)
        self._mel_input = self._mel_model.get_inputs()[0].name
        self._embedding_input = self._embedding_model.get_inputs()[0].name
        self.keep = keep
        # What the embedding of "nothing yet" looks like: the model's view of a flat
        # mel spectrogram, the same start state openWakeWord uses for its mel buffer.
        self._idle_mel = np.ones((_MEL_FRAMES, 32), dtype=np.float32)
        self._idle_embedding = self._embed(self._idle_mel)
        # Digital silence (a muted or absent microphone gives exact zeros) always makes
        # the same mel frames, and once they fill the window the same embedding: both
        # are kept after their first computation, so silence costs no model run.
        self._silent_mel: np.ndarray | None = None
        self._silent_embedding: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self._context = np.zeros(0, dtype=np.int16)
        self._mel = self._idle_mel.copy()
        self._features = np.repeat(self._idle_embedding, self.keep, axis=0)
        self._silent_frames = 0
        self.silent_run = 0
        """How many of the last embeddings are digital silence's (all the same)."""

    def push(self, chunk: np.ndarray) -> None:
        """Add exactly one 80 ms chunk."""
        silent = len(self._context) == _MEL_CONTEXT and not chunk.any() and not self._context.any()
        if silent and self._silent_mel is not None:
            mel = self._silent_mel
        else:
            frames = np.concatenate([self._context, chunk])[None, :].astype(np.float32)
            mel = self._mel_model.run(None, {self._mel_input: frames})[0]
            mel = np.squeeze(mel) / 10.0 + 2.0  # openWakeWord's scaling of the mel output
            if silent:
                self._silent_mel = mel
        self._context = chunk[-_MEL_CONTEXT:]
        self._mel = np.vstack([self._mel, mel])[-_MEL_FRAMES:]
        self._silent_frames = self._silent_frames + len(mel) if silent else 0
        if self._silent_frames >= _MEL_FRAMES:
            if self._silent_embedding is None:
                self._silent_embedding = self._embed(self._mel)
            embedding = self._silent_embedding
            self.silent_run += 1
        else:
            embedding = self._embed(self._mel)
            self.silent_run = 0
        self._features = np.vstack([self._features, embedding])[-self.keep :]

    def recent(self, count: int) -> np.ndarray:
        """The last `count` embeddings, oldest first: shape (count, 96)."""
        return self._features[-count:]

    def of_audio(self, samples: np.ndarray) -> np.ndarray:
        """Every embedding of a whole recording, from a clean start (for training)."""
        self.reset()
        out = []
        for offset in range(0, len(samples) - CHUNK + 1, CHUNK):
            self.push(np.asarray(samples[offset : offset + CHUNK], dtype=np.int16))
            out.append(self._features[-1])
        self.reset()
        return np.asarray(out, dtype=np.float32).reshape(-1, self._features.shape[1])

    def _embed(self, mel: np.ndarray) -> np.ndarray:
        batch = mel[None, :, :, None].astype(np.float32)
        out = self._embedding_model.run(None, {self._embedding_input: batch})[0]
        return np.asarray(out, dtype=np.float32).reshape(1, -1)


class OpenWakeWordDetector:
    def __init__(
        self,
        model_path: Path,
        melspectrogram_path: Path,
        embedding_path: Path,
        *,
        threshold: float = 0.5,
        threads: int = 1,
        name: str = "",
    ) -> None:
        self.name = name or Path(model_path).stem
        self.threshold = threshold
        self._wake_model = _session(model_path, threads)
        wake_input = self._wake_model.get_inputs()[0]
        self._wake_input = wake_input.name
        self._window = int(wake_input.shape[1])
        self.embeddings = SpeechEmbeddings(
            melspectrogram_path, embedding_path, threads=threads, keep=self._window
        )
        self._silent_score: float | None = None
        self.reset()

    def reset(self) -> None:
        self.embeddings.reset()
        self._pending = np.zeros(0, dtype=np.int16)
        self._scores = 0
        self._cooldown = 0

    def process(self, samples: np.ndarray, threshold: float | None = None) -> Detection | None:
        """Score 16 kHz int16 audio; any length, scored in 80 ms steps."""
        audio = np.concatenate([self._pending, np.asarray(samples, dtype=np.int16)])
        detection = None
        offset = 0
        while offset + CHUNK <= len(audio):
            found = self._score(audio[offset : offset + CHUNK], threshold or self.threshold)
            detection = detection or found
            offset += CHUNK
        self._pending = audio[offset:]
        return detection

    def score_chunk(self, chunk: np.ndarray) -> float:
        """The raw wake-word score (0–1) of exactly one 80 ms chunk."""
        self.embeddings.push(chunk)
        if self.embeddings.silent_run >= self._window and self._silent_score is not None:
            score = self._silent_score  # a window of digital silence scores the same
        else:
            window = self.embeddings.recent(self._window)[None, :, :].astype(np.float32)
            score = float(np.squeeze(self._wake_model.run(None, {self._wake_input: window})[0]))
            if self.embeddings.silent_run >= self._window:
                self._silent_score = score
        self._scores += 1
        return 0.0 if self._scores <= _WARM_UP_SCORES else score

    def _score(self, chunk: np.ndarray, threshold: float) -> Detection | None:
        score = self.score_chunk(chunk)
        if self._cooldown > 0:
            self._cooldown -= 1
            return None
        if score >= threshold:
            self._cooldown = _COOLDOWN_CHUNKS
            return Detection(self.name, score)
        return None
