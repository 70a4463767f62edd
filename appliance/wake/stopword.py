"""The "stop" keyword head: recognises a stop phrase said over the appliance's own voice.

It reads the speech embeddings the wake-word detector computes anyway (openWakeWord's
96 values per 80 ms), so listening for "stop" while the appliance talks costs one small
matrix product per 80 ms. The head is made on this machine by `appliance models prepare`
(see `appliance.prepare.stopword_training`), saved as an .npz with the recipe version it
was made by.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

from appliance.errors import ModelError
from appliance.wake.base import Detection

WINDOW = 10
"""Embeddings per decision: 0.8 s of hops on 0.76 s receptive fields (~1.5 s of audio)."""
RECIPE_VERSION = 3
"""Bump when the training recipe changes: `models prepare` remakes older heads."""
FILE_NAME = "stop-keyword.npz"
DEFAULT_THRESHOLD = 0.97
"""The trigger score `conversation.stop_keyword_threshold` defaults to: 0 false stops in
10 minutes of its own speech through Speex, against 12 an hour at 0.9."""
_COOLDOWN = 12
"""A detection's score stays high for a few windows: report it once."""
_KEYS = ("w1", "b1", "w2", "b2", "mean", "std")


def stop_windows(embeddings: np.ndarray) -> np.ndarray:
    """Every run of WINDOW consecutive embeddings, flattened: (n - WINDOW + 1, WINDOW * 96)."""
    n = len(embeddings) - WINDOW + 1
    if n <= 0:
        return np.zeros((0, WINDOW * embeddings.shape[1]), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(embeddings, (WINDOW, embeddings.shape[1]))
    return view.reshape(n, -1).astype(np.float32)


class StopWordModel:
    def __init__(
        self, params: dict[str, np.ndarray], *, threshold: float = DEFAULT_THRESHOLD
    ) -> None:
        missing = [k for k in _KEYS if k not in params]
        if missing:
            raise ModelError(f"stop keyword model is missing {', '.join(missing)}")
        self.params = {k: np.asarray(params[k], dtype=np.float32) for k in _KEYS}
        self.threshold = threshold
        if self.params["w1"].shape[0] != self.params["mean"].shape[0]:
            raise ModelError("stop keyword model: inconsistent shapes")

    @classmethod
    def load(cls, path: Path, *, threshold: float = DEFAULT_THRESHOLD) -> StopWordModel:
        try:
            with np.load(path, allow_pickle=False) as data:
                params = {k: data[k] for k in data.files}
        except Exception as err:
            raise ModelError(
                f"cannot read the stop keyword model {path}: {err}. "
                "Run `appliance models prepare --force` to make it again."
            ) from err
        return cls(params, threshold=threshold)

    def save(self, path: Path, *, recipe: int = RECIPE_VERSION) -> None:
        """Atomically: a half-written head is never left behind."""
        buffer = io.BytesIO()
        np.savez(buffer, recipe=np.array(recipe), **self.params)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".stop-", suffix=".npz")
        with os.fdopen(fd, "wb") as out:
            out.write(buffer.getvalue())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    def scores(self, windows: np.ndarray) -> np.ndarray:
        p = self.params
        x = (windows - p["mean"]) / p["std"]
        hidden = np.maximum(0.0, x @ p["w1"] + p["b1"])
        logits = (hidden @ p["w2"] + p["b2"])[:, 0]
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))

    def detections(self, embeddings: np.ndarray) -> int:
        """How many times a recording's embeddings trigger the head (with its cooldown)."""
        count, cooldown = 0, 0
        for score in self.scores(stop_windows(embeddings)):
            if cooldown > 0:
                cooldown -= 1
            elif score >= self.threshold:
                count += 1
                cooldown = _COOLDOWN
        return count


def recipe_of(path: Path) -> int:
    """The recipe version a saved head was made by; 0 if unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return int(data["recipe"]) if "recipe" in data.files else 0
    except Exception:
        return 0


class StopWordDetector:
    """Streams over a wake detector's embeddings: call `check` after each 80 ms chunk the
    wake detector processed."""

    name = "stop"

    window = WINDOW

    def __init__(self, model: StopWordModel) -> None:
        self.model = model
        self._cooldown = 0
        self.last_score = 0.0

    @property
    def threshold(self) -> float:
        return self.model.threshold

    def reset(self) -> None:
        self._cooldown = 0
        self.last_score = 0.0

    def check(self, recent: np.ndarray, *, allowed: bool = True) -> Detection | None:
        """`recent`: the last WINDOW embeddings (or more; the newest are used).
        `allowed=False` scores without reporting (the double-talk gate is shut: its own
        voice); it does not start the cool-down, which would otherwise swallow the user's
        "stop" said a moment after its own voice scored high."""
        if len(recent) < WINDOW:
            return None
        score = float(self.model.scores(recent[-WINDOW:].reshape(1, -1))[0])
        self.last_score = score
        if not allowed:
            return None
        if self._cooldown > 0:
            self._cooldown -= 1
            return None
        if score >= self.model.threshold:
            self._cooldown = _COOLDOWN
            return Detection(self.name, score)
        return None
