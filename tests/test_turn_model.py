"""The Smart Turn model as prepared by ./setup.sh, on speech the test makes: a finished
request and sentences stopped at a pause that keeps their unfinished melody."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.audio.mel import log_mel, mel_filters
from appliance.audio.turn import SmartTurn
from appliance.config import default_models_dir
from appliance.errors import ModelError
from appliance.models.catalog import ModelStore
from appliance.testing.speech import paused_sentence, tts_phrase
from appliance.tts.piper import PiperTts

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def store() -> ModelStore:
    return ModelStore(default_models_dir())


@pytest.fixture(scope="module")
def model(store) -> SmartTurn:
    return SmartTurn(store.path("smart-turn-v3.2", "turn"))


@pytest.fixture(scope="module")
def tts(store) -> PiperTts:
    return PiperTts(store.path("en_US-joe-medium", "tts"), vary=False)


def test_whisper_features_have_whispers_shape_and_range():
    features = log_mel(np.random.default_rng(0).normal(0, 0.1, 8 * 16000))
    assert features.shape == (80, 800)
    assert features.max() <= 2.0 and features.max() - features.min() <= 2.0 + 1e-6
    # 80 triangles, each with unit area in hertz (Slaney's normalisation), sampled at the
    # FFT's 40 Hz bins (so within about 10 %)
    filters = mel_filters()
    hz_per_bin = 8000 / (filters.shape[1] - 1)
    assert filters.shape == (80, 201)
    assert np.allclose(filters.sum(axis=1) * hz_per_bin, 1.0, rtol=0.1)


def test_a_finished_request_is_finished(model, tts):
    spoken = np.concatenate([tts_phrase(tts, "What time is it?"), np.zeros(3840, np.int16)])
    verdict = model.judge(spoken)
    assert verdict.complete and verdict.probability > 0.9


@pytest.mark.parametrize(
    ("first", "second"),
    [("Set a timer for five minutes and", "thirty seconds."),
     ("What is the weather like in", "Paris?"),
     ("I would like to", "know the time.")],
)  # fmt: skip
def test_a_sentence_stopped_at_its_pause_is_not_finished(model, tts, first, second):
    spoken = paused_sentence(first, second, 0.6, tts=tts)
    so_far = spoken.samples[: int((spoken.resumes - 0.6 + 0.24) * 16000)]
    verdict = model.judge(so_far)
    assert not verdict.complete and verdict.probability < 0.2, verdict


def test_a_file_that_is_no_smart_turn_model_is_refused_clearly(store, tmp_path):
    with pytest.raises(ModelError, match="not a Smart Turn v3 model"):
        SmartTurn(store.path("silero-vad", "vad"))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x01garbage")
    with pytest.raises(ModelError, match="cannot load the end-of-turn model"):
        SmartTurn(broken)
