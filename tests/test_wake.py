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


def package_model():
    """The openwakeword package's own streaming model, on the same three files."""
    from openwakeword.model import Model

    return Model(
        wakeword_models=[str(WAKE_DIR / "hey_jarvis_v0.1.onnx")],
        inference_framework="onnx",
        melspec_model_path=str(WAKE_DIR / "melspectrogram.onnx"),
        embedding_model_path=str(WAKE_DIR / "embedding_model.onnx"),
    )


def chunks(samples: np.ndarray):
    for offset in range(0, len(samples) - CHUNK + 1, CHUNK):
        yield samples[offset : offset + CHUNK]


def test_scores_equal_the_openwakeword_package(detector, hey_jarvis):
    reference = package_model()
    ours, theirs = [], []
    for chunk in chunks(hey_jarvis):
        ours.append(detector.score_chunk(chunk))
        theirs.append(float(next(iter(reference.predict(chunk).values()))))
    # The package starts from random features; after 16 chunks (the scored window) the
    # two must agree exactly, through the wake word and after it.
    np.testing.assert_allclose(ours[16:], theirs[16:], atol=1e-5)
    assert max(ours) > 0.5


def test_digital_silence_scores_the_same_without_running_the_models(detector):
    """A muted or absent microphone gives exact zeros: after the first seconds of them
    the models are not run again, and every score still equals the package's."""
    reference = package_model()
    zeros = np.zeros(16_000 * 6, dtype=np.int16)
    said = add_noise(compose(0.5, espeak_phrase("Hey Jarvis."), 0.5))
    audio = np.concatenate([said, zeros, said, zeros])
    runs = []
    for name in ("_mel_model", "_embedding_model"):
        session = getattr(detector.embeddings, name)
        real_run = session.run
        session.run = lambda *a, real_run=real_run, name=name: runs.append(name) or real_run(*a)
    ours, theirs = [], []
    for chunk in chunks(audio):
        ours.append(detector.score_chunk(chunk))
        theirs.append(float(next(iter(reference.predict(chunk).values()))))
    np.testing.assert_allclose(ours[16:], theirs[16:], atol=1e-5)
    assert sum(s > 0.5 for s in ours[1:]) >= 2 and ours[-1] < 0.01
    # Each 6 s of zeros is 75 chunks: only the first ~11 of each stretch run the models.
    chunks_in_all = len(audio) // CHUNK
    assert runs.count("_mel_model") < chunks_in_all - 2 * 60, runs.count("_mel_model")
    assert runs.count("_embedding_model") < chunks_in_all - 2 * 60


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
