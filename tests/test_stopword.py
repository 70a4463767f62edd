"""The "stop" keyword head: its file, and the head `models prepare` made, on voices it
never trained on, over the appliance's own voice after echo cancellation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from appliance.audio.aec import SpeexEchoCanceller
from appliance.config import default_models_dir
from appliance.errors import ModelError
from appliance.models.catalog import ModelStore
from appliance.pipeline.barge_in import KeptEnergy
from appliance.prepare.stopword_training import HELD_OUT_VOICES, espeak, own_voice_recording
from appliance.wake.openwakeword import CHUNK, SpeechEmbeddings
from appliance.wake.stopword import (
    FILE_NAME,
    RECIPE_VERSION,
    WINDOW,
    StopWordDetector,
    StopWordModel,
    recipe_of,
    stop_windows,
)


def tiny_params(features: int = WINDOW * 96) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "w1": rng.normal(size=(features, 4)).astype(np.float32),
        "b1": np.zeros(4, np.float32),
        "w2": rng.normal(size=(4, 1)).astype(np.float32),
        "b2": np.zeros(1, np.float32),
        "mean": np.zeros(features, np.float32),
        "std": np.ones(features, np.float32),
    }


def test_a_saved_head_loads_back_with_its_recipe(tmp_path):
    path = tmp_path / FILE_NAME
    model = StopWordModel(tiny_params())
    model.save(path)
    again = StopWordModel.load(path, threshold=0.8)
    windows = np.random.default_rng(1).normal(size=(5, WINDOW * 96)).astype(np.float32)
    assert np.allclose(again.scores(windows), model.scores(windows))
    assert again.threshold == 0.8 and recipe_of(path) == RECIPE_VERSION
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]  # no temp file left


def test_a_corrupt_or_incomplete_head_is_a_clear_model_error(tmp_path):
    path = tmp_path / FILE_NAME
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelError, match="models prepare --force"):
        StopWordModel.load(path)
    assert recipe_of(path) == 0  # so `models prepare` makes it again
    params = tiny_params()
    del params["w2"]
    with pytest.raises(ModelError, match="missing w2"):
        StopWordModel(params)


def test_windows_slide_one_embedding_at_a_time():
    embeddings = np.arange(12 * 96, dtype=np.float32).reshape(12, 96)
    windows = stop_windows(embeddings)
    assert windows.shape == (3, WINDOW * 96)
    assert np.array_equal(windows[1], embeddings[1 : 1 + WINDOW].ravel())
    assert stop_windows(embeddings[:5]).shape == (0, WINDOW * 96)


def test_the_detector_reports_once_per_phrase():
    model = StopWordModel(tiny_params(), threshold=0.0)  # every window "scores"
    detector = StopWordDetector(model)
    recent = np.zeros((WINDOW, 96), np.float32)
    hits = [detector.check(recent) is not None for _ in range(20)]
    assert hits[0] and sum(hits) == 2  # then quiet for its cooldown
    assert detector.check(recent[:3]) is None  # not enough history yet


def test_its_own_voice_scoring_high_does_not_swallow_the_users_stop():
    model = StopWordModel(tiny_params(), threshold=0.0)
    detector = StopWordDetector(model)
    recent = np.zeros((WINDOW, 96), np.float32)
    # The double-talk gate is shut (its own voice): scored, not reported...
    assert all(detector.check(recent, allowed=False) is None for _ in range(3))
    assert detector.last_score >= model.threshold
    # ...and no cool-down was started: the user's "stop" right after is taken.
    assert detector.check(recent) is not None


# ---- the head `appliance models prepare` made ---------------------------------------


@pytest.fixture(scope="module")
def made():
    store = ModelStore(default_models_dir())
    path = store.root / FILE_NAME
    assert path.is_file(), f"{path} is missing: run ./setup.sh (appliance models prepare)"
    embeddings = SpeechEmbeddings(
        store.path("oww-melspectrogram", "wake-features"),
        store.path("oww-embedding", "wake-features"),
    )
    from appliance.tts.piper import PiperTts

    tts = PiperTts(store.path("en_US-joe-medium", "tts"), vary=False)
    return StopWordModel.load(path, threshold=0.97), embeddings, own_voice_recording(tts)


def _over_its_own_voice(
    phrase: np.ndarray, own: np.ndarray, at: float = 1.5, *, mic_too: bool = False
) -> Any:
    """The user's phrase in the room while the appliance talks, through Speex AEC (and
    the microphone signal with it, for `mic_too`)."""
    n = int(at * 16000) + len(phrase) + 16000
    played = own[:n].astype(np.float64)
    mic = np.zeros(n)
    delay = int(0.03 * 16000)
    mic[delay:] = 0.5 * played[: n - delay]  # the speaker, 6 dB down, 30 ms away
    start = int(at * 16000)
    mic[start : start + len(phrase)] += phrase
    mic += np.random.default_rng(0).normal(0, 30, n)
    mic16 = np.clip(mic, -32768, 32767).astype(np.int16)
    canceller = SpeexEchoCanceller()
    # Converge on its own voice first, as it would have while the reply played.
    for i in range(0, 3 * 16000, CHUNK):
        canceller.process(
            (0.5 * own[-3 * 16000 :][i : i + CHUNK]).astype(np.int16),
            own[-3 * 16000 :][i : i + CHUNK],
        )
    out = [
        canceller.process(mic16[i : i + CHUNK], own[:n][i : i + CHUNK])
        for i in range(0, n - CHUNK + 1, CHUNK)
    ]
    cleaned = np.concatenate(out)
    return (cleaned, mic16[: len(cleaned)]) if mic_too else cleaned


def _stops_the_pipeline_would_take(model, embeddings, cleaned, mic) -> list[float]:
    """Detections as the pipeline takes them: the head's, where the canceller kept at
    least −6 dB (DOUBLE_TALK_KEPT_DB) of the microphone's energy over the last 0.8 s."""
    kept = KeptEnergy(chunks=WINDOW)
    feats = embeddings.of_audio(cleaned)
    detector = StopWordDetector(model)
    taken = []
    for i in range(min(len(feats), len(cleaned) // CHUNK)):
        kept.add(mic[i * CHUNK : (i + 1) * CHUNK], cleaned[i * CHUNK : (i + 1) * CHUNK])
        if detector.check(feats[: i + 1], allowed=kept.someone_else()) is not None:
            taken.append((i + 1) * CHUNK / 16000)
    return taken


def test_stop_in_voices_it_never_heard_over_its_own_voice(made):
    """Four stop phrases in 5 voices the head never trained on (docs/pipeline.md: 17 of
    20 with one head). A lone "stop" alone was too few to judge a head by: Piper's voice
    varies between setups, and so does the head; one made here took it 2 times in 5, and
    "stop talking" 5 in 5."""
    model, embeddings, own = made
    found = {}
    for text in ("stop", "stop it", "okay stop", "stop talking"):
        for voice in HELD_OUT_VOICES:
            phrase = espeak(text, voice, 150, 50).astype(np.float64)
            cleaned, mic = _over_its_own_voice(phrase, own, mic_too=True)
            taken = _stops_the_pipeline_would_take(model, embeddings, cleaned, mic)
            found[(text, voice)] = bool(taken)
    assert sum(found.values()) >= 13, found


def test_its_own_voice_alone_is_not_stop(made):
    model, embeddings, own = made
    # 40 s of its own voice (which says "stopped" once), with echo cancellation as in use.
    # The head alone may fire on what is left of its voice (one window has been seen);
    # the pipeline then sees the canceller took most of the sound away, and ignores it.
    # The bench measures the rate over 10 minutes.
    alone, mic = _over_its_own_voice(np.zeros(16000), own, at=38.0, mic_too=True)
    assert model.detections(embeddings.of_audio(alone)) <= 1
    assert _stops_the_pipeline_would_take(model, embeddings, alone, mic) == []


def test_its_own_voice_through_a_cold_canceller_is_not_stop(made):
    """The first reply after a start: Speex has not adapted yet and leaves most of its own
    voice in, loud (the speaker next to the mic)."""
    model, embeddings, own = made
    played = own[: 30 * 16000]
    mic = np.zeros(len(played))
    delay = int(0.02 * 16000)
    mic[delay:] = played[: len(played) - delay].astype(np.float64)  # at full level
    mic += np.random.default_rng(1).normal(0, 30, len(mic))
    mic16 = np.clip(mic, -32768, 32767).astype(np.int16)
    canceller = SpeexEchoCanceller()
    cleaned = np.concatenate(
        [
            canceller.process(mic16[i : i + CHUNK], played[i : i + CHUNK])
            for i in range(0, len(played) - CHUNK + 1, CHUNK)
        ]
    )
    assert model.detections(embeddings.of_audio(cleaned)) == 0


def test_other_words_over_its_own_voice_are_mostly_not_stop(made):
    """Talking over the reply with something else stops it now and then (docs/pipeline.md gives
    the measured share); a head that fired on any voice at all would fail here."""
    model, embeddings, own = made
    fired = []
    for i, voice in enumerate(HELD_OUT_VOICES[:3]):
        for text in ("what time is it", "keep going", "hello there", "thanks", "shop"):
            phrase = espeak(text, voice, 140 + 10 * i, 50).astype(np.float64)
            cleaned = _over_its_own_voice(phrase, own, at=1.5 + 0.7 * i)
            fired.append(model.detections(embeddings.of_audio(cleaned)) > 0)
    assert sum(fired) <= len(fired) // 2, fired


def test_the_config_default_is_the_measured_threshold():
    from appliance.config import ConversationConfig
    from appliance.wake.stopword import DEFAULT_THRESHOLD

    assert ConversationConfig().stop_keyword_threshold == DEFAULT_THRESHOLD == 0.97
