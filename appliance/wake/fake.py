"""A wake-word detector for unit tests: it fires on chunks that contain a marker.

Tests build audio where a wake word should be "heard" by writing `WAKE_MARKER` into it,
so the pipeline's logic is tested without any model.
"""

from __future__ import annotations

import numpy as np

from appliance.wake.base import Detection

WAKE_MARKER = np.array([12345, -12345, 12345, -12345], dtype=np.int16)


def mark_wake(samples: np.ndarray, at_sample: int) -> np.ndarray:
    out = samples.copy()
    out[at_sample : at_sample + len(WAKE_MARKER)] = WAKE_MARKER
    return out


class MarkerWakeDetector:
    name = "marker"
    threshold = 0.5
    embeddings = None

    def __init__(self) -> None:
        self.resets = 0

    def process(self, samples: np.ndarray, threshold: float | None = None) -> Detection | None:
        """A marker scores 1.0: heard at any threshold up to 1."""
        if threshold is not None and threshold > 1.0:
            return None
        n = len(WAKE_MARKER)
        hits = np.flatnonzero(samples[: len(samples) - n + 1] == WAKE_MARKER[0])
        if any(np.array_equal(samples[i : i + n], WAKE_MARKER) for i in hits):
            return Detection(self.name, 1.0)
        return None

    def reset(self) -> None:
        self.resets += 1
