"""openWakeWord with ONNX models read from the models directory (never downloaded)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from appliance.errors import ModelError
from appliance.wake.base import Detection

_LOGGER = logging.getLogger(__name__)


class OpenWakeWordDetector:
    _FLUSH_CHUNKS = 20
    """1.6 s of silence: longer than the window the wake model scores."""

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
        try:
            from openwakeword.model import Model
        except ImportError as err:
            raise ModelError(f"openwakeword is not installed ({err}); run ./setup.sh") from err
        self.name = name or Path(model_path).stem
        self.threshold = threshold
        try:
            self._model = Model(
                wakeword_models=[str(model_path)],
                inference_framework="onnx",
                melspec_model_path=str(melspectrogram_path),
                embedding_model_path=str(embedding_path),
                ncpu=threads,
            )
        except Exception as err:
            raise ModelError(f"cannot load wake word model {model_path}: {err}") from err
        self._key = next(iter(self._model.models))
        self._cooldown = 0
        self._silence = np.zeros(1280, dtype=np.int16)

    def process(self, samples: np.ndarray) -> Detection | None:
        scores = self._model.predict(samples)
        score = float(scores.get(self._key, 0.0))
        if self._cooldown > 0:
            self._cooldown -= 1
            return None
        if score >= self.threshold:
            # The score stays high for a few frames after the word: one detection only.
            self._cooldown = 10
            return Detection(self.name, score)
        return None

    def reset(self) -> None:
        """Forget the heard audio. openWakeWord's own reset() clears only its score
        history, not the feature buffers (~1.3 s of audio the model looks at), so the
        wake word just heard would fire again; push silence through them instead."""
        for _ in range(self._FLUSH_CHUNKS):
            self._model.predict(self._silence)
        self._model.reset()
        self._cooldown = 0
