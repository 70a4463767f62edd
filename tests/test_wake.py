"""openWakeWord through our streaming code: same scores as the openwakeword package, and
real detections on synthesised speech."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.config import default_models_dir
from appliance.testing.speech import add_noise, compose, espeak_phrase
from appliance.wake.openwakeword import CHUNK, OpenWakeWordDetector

pytestmark = pytest.mark.e2e
WAKE_DIR = default_models_dir() / "wake"


@pytest.fixture
def detector() -> OpenWakeWordDetector:
    return OpenWakeWordDetector(
        WAKE_DIR / "hey_jarvis_v0.1.onnx",
        WAKE_DIR / "melspectrogram.onnx",
        WAKE_DIR / "embedding_model.onnx",
        name="hey_jarvis",
    )


@pytest.fixture(scope="module")
def hey_jarvis() -> np.ndarray:
    return add_noise(compose(2.0, espeak_phrase("Hey Jarvis."), 1.0, espeak_phrase("Hello."), 1))


def chunks(samples: np.ndarray):
    for offset in range(0, len(samples) - CHUNK + 1, CHUNK):
        yield samples[offset : offset + CHUNK]


def test_scores_equal_the_openwakeword_package(detector, hey_jarvis):
    from openwakeword.model import Model

    reference = Model(
        wakeword_models=[str(WAKE_DIR / "hey_jarvis_v0.1.onnx")],
        inference_framework="onnx",
        melspec_model_path=str(WAKE_DIR / "melspectrogram.onnx"),
        embedding_model_path=str(WAKE_DIR / "embedding_model.onnx"),
    )
    ours, theirs = [], []
    for chunk in chunks(hey_jarvis):
        ours.append(detector.score_chunk(chunk))
        theirs.append(float(next(iter(reference.predict(chunk).values()))))
    # The package starts from random features; after 16 chunks (the scored window) the
    # two must agree exactly, through the wake word and after it.
    np.testing.assert_allclose(ours[16:], theirs[16:], atol=1e-5)
    assert max(ours) > 0.5


def test_detects_once_and_not_on_other_speech(detector, hey_jarvis):
    detections = [d for c in chunks(hey_jarvis) if (d := detector.process(c)) is not None]
    assert len(detections) == 1 and detections[0].wake_word == "hey_jarvis"
    detector.reset()
    other = add_noise(compose(1.0, espeak_phrase("Hey Travis, what is the time?"), 1.0))
    assert all(detector.process(c) is None for c in chunks(other))


def test_reset_forgets_the_heard_wake_word(detector, hey_jarvis):
    audio = list(chunks(hey_jarvis))
    fired = next(i for i, c in enumerate(audio) if detector.process(c) is not None)
    # Without a reset the score stays high on the chunks after a detection …
    assert detector.score_chunk(audio[fired + 1]) > 0.5
    detector.reset()
    # … after it, the same tail of the wake word does not fire again.
    assert not any(detector.process(c) for c in audio[fired + 2 : fired + 14])


def test_any_chunk_length_is_accepted(detector, hey_jarvis):
    pieces = np.array_split(hey_jarvis, 97)  # odd sizes, not multiples of 80 ms
    assert sum(detector.process(p) is not None for p in pieces) == 1
