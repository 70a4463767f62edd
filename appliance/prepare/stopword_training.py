"""Making the "stop" keyword model here, from the models the registries carry.

No registry package carries a "stop" keyword model, and whisper tiny mishears a short
"stop" said over the appliance's own voice ("that's time", "let's top"). So we train a
small head on openWakeWord's speech embeddings, the way openWakeWord trains its own wake
words from synthetic speech: the stop phrases spoken by many espeak-ng voices (speeds,
pitches) and by Piper, mixed with what is left of the appliance's own voice after echo
cancellation and with noise; against other words (many of them close: "top", "shop",
"stock"), everyday requests, and long stretches of the appliance's own voice.

Everything is seeded, but Piper's voice varies from run to run, so heads made on two
machines differ a little. Making the recordings and training takes about 5 minutes on 2
cores (`appliance models prepare` does it once, and again only when RECIPE_VERSION moves).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.audio.format import PIPELINE_RATE
from appliance.models.catalog import ModelStore
from appliance.testing.speech import espeak_phrase, tts_phrase
from appliance.tts.base import TextToSpeech
from appliance.wake.openwakeword import CHUNK, SpeechEmbeddings
from appliance.wake.stopword import (
    RECIPE_VERSION,
    WINDOW,
    StopWordModel,
    stop_windows,
)

_LOGGER = logging.getLogger(__name__)

POSITIVE_PHRASES = (
    "stop", "stop!", "stop it", "stop talking", "stop please", "please stop", "okay stop",
    "be quiet", "quiet please", "shut up", "never mind", "that's enough",
)  # fmt: skip
""""cancel" is left to the speech-to-text check: as a keyword it was confused with
"candle", "castle" and "capital" by voices the head had not heard."""
NEGATIVE_PHRASES = (
    "top", "shop", "stock", "step", "stuck", "spot", "stuff", "stay", "start", "still",
    "story", "storm", "sock", "drop", "hop", "tap", "stamp", "candle", "castle", "counsel",
    "cancel", "capital", "calendar", "channel", "handle", "be cute", "quite", "quit",
    "shut", "up", "mind", "never", "nice", "okay", "yes", "no",
    "hello", "thanks", "thank you", "hey jarvis", "what time is it", "turn on the light",
    "turn off the porch light", "set a timer for ten minutes", "tell me a joke",
    "what's the weather", "and of Germany", "what is the capital of France",
    "read this", "what do you see", "go on", "tell me more", "really", "I see",
    "play some music", "good morning", "how are you", "sounds good", "seventeen times three",
    "the kitchen fan", "is the door locked", "what's on my calendar", "wait a second",
    "hold on", "sorry", "excuse me", "what did you say", "louder", "keep going",
)  # fmt: skip
OWN_VOICE_TEXT = (
    "The moon is Earth's only natural satellite. It orbits at an average distance of "
    "about three hundred and eighty four thousand kilometres. Paris is the capital of "
    "France, and Berlin is the capital of Germany. Your ten minute timer is done. "
    "The porch light is on. It is twenty past three in the afternoon. Seventeen times "
    "twenty three is three hundred and ninety one. I can read: open nine to five. "
    "Here is a short story about a fox who wanted to fly. Every morning he climbed the "
    "hill and watched the birds. One day a crow stopped beside him and laughed. Stories "
    "like this one are told to children all over the world. The weather today will be "
    "cloudy with a chance of rain later on. Please try again. Which light do you mean, "
    "the kitchen light or the porch light? Water boils at one hundred degrees at sea "
    "level. The quick brown fox jumps over the lazy dog. Sorry, something went wrong."
)
_ACCENTS = ("en-us", "en-gb", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029")
_VARIANTS = (
    "Alex", "Alicia", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2",
    "Henrique", "Hugo", "Jacky", "Marco", "Mario", "Michael", "Mike", "Nguyen", "RicishayMax",
    "Storm", "Tweaky", "adam", "anika", "announcer", "antonio", "aunty", "belinda",
    "benjamin", "boris", "croak", "david", "ed", "edward", "edward2", "f1", "f2", "f3", "f4",
    "grandma", "grandpa", "gustave", "iven", "iven2", "john", "klatt", "klatt2", "linda",
    "m1", "m2", "m3", "m4", "m5", "m6", "m8", "marcelo", "max", "michel", "miguel", "norbert",
    "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby", "steph",
    "steph2", "travis", "victor", "zac",
)  # fmt: skip
TRAIN_VOICES = tuple(
    f"{_ACCENTS[i % len(_ACCENTS)]}+{variant}" for i, variant in enumerate(_VARIANTS)
)
"""espeak-ng's voice variants over its English accents (its data ships with the package)."""
HELD_OUT_VOICES = ("en-us+m7", "en-us+f5", "en-gb+Andrea", "en-us+Lee", "en-us+caleb")
"""Voices the head never trains on: its measured recall is on these."""

Speak = Callable[[str, str, int, int], np.ndarray]
"""(text, voice, speed, pitch) → 16 kHz int16 speech."""


@dataclass(frozen=True)
class Example:
    """One recording's embeddings and, per window, 1 (stop), 0 (not), -1 (ignore)."""

    embeddings: np.ndarray
    labels: np.ndarray


def espeak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    return espeak_phrase(text, voice=voice, speed=speed, pitch=pitch)


def _trim(samples: np.ndarray) -> np.ndarray:
    """Cut the silence synthesisers put around a phrase (10 ms frames under −40 dBFS)."""
    frames = len(samples) // 160
    if frames == 0:
        return samples
    levels = np.abs(samples[: frames * 160].astype(np.float32)).reshape(frames, 160).max(axis=1)
    loud = np.flatnonzero(levels > 0.01 * 32768)
    if len(loud) == 0:
        return samples[:0]
    return samples[loud[0] * 160 : (loud[-1] + 1) * 160]


def _at_level(samples: np.ndarray, peak_dbfs: float) -> np.ndarray:
    peak = float(np.abs(samples.astype(np.float32)).max()) or 1.0
    return samples.astype(np.float32) * (10 ** (peak_dbfs / 20) * 32768 / peak)


_CONVERGE = 2.0
"""Seconds of its own voice the echo canceller adapts on before the phrase's recording."""


class _Mixer:
    """Places a phrase in a short recording, as the keyword head will hear it: mostly over
    the appliance's own voice after the Speex echo canceller (the real residue, with its
    double-talk distortion), sometimes with no echo; always with some noise."""

    def __init__(self, own_voice: np.ndarray, rng: np.random.Generator) -> None:
        self.own_voice = own_voice.astype(np.float32)
        self.rng = rng

    def mix(self, phrase: np.ndarray, lead: float, trail: float) -> tuple[np.ndarray, int, int]:
        rng = self.rng
        speech = _at_level(_trim(phrase), rng.uniform(-24, -4))
        lead_n, trail_n = int(lead * PIPELINE_RATE), int(trail * PIPELINE_RATE)
        total = lead_n + len(speech) + trail_n
        near = np.zeros(total, dtype=np.float32)
        near[lead_n : lead_n + len(speech)] = speech
        noise_level = 10 ** (rng.uniform(-70, -45) / 20) * 32768
        if rng.random() >= 0.7:
            out = near + rng.normal(0, noise_level, total)
            return np.clip(out, -32768, 32767).astype(np.int16), lead_n, lead_n + len(speech)
        return self._through_canceller(near, noise_level), lead_n, lead_n + len(speech)

    def _through_canceller(self, near: np.ndarray, noise_level: float) -> np.ndarray:
        from appliance.audio.aec import SpeexEchoCanceller

        rng = self.rng
        converge = int(_CONVERGE * PIPELINE_RATE)
        n = converge + len(near)
        n += (-n) % CHUNK
        start = int(rng.integers(0, max(1, len(self.own_voice) - n)))
        played = np.zeros(n, dtype=np.float32)
        segment = self.own_voice[start : start + n]
        played[: len(segment)] = segment
        delay = int(rng.uniform(0.01, 0.05) * PIPELINE_RATE)
        echo = np.zeros(n, dtype=np.float32)
        echo[delay:] = played[: n - delay] * 10 ** (rng.uniform(-12, 0) / 20)
        echo[delay + 240 :] += 0.3 * echo[: n - delay - 240]  # a reflection 15 ms later
        mic = echo + rng.normal(0, noise_level, n)
        mic[converge : converge + len(near)] += near
        mic16 = np.clip(mic, -32768, 32767).astype(np.int16)
        played16 = np.clip(played, -32768, 32767).astype(np.int16)
        canceller = SpeexEchoCanceller()
        cleaned = [
            canceller.process(mic16[i : i + CHUNK], played16[i : i + CHUNK])
            for i in range(0, n, CHUNK)
        ]
        return np.concatenate(cleaned)[converge : converge + len(near)]


def _window_labels(frames: int, start: int | None, end: int | None) -> np.ndarray:
    """Per window ending at each embedding: stop once the whole phrase is inside it (up to
    0.4 s after its end), ignored while the phrase is partly in, not stop elsewhere."""
    labels = np.zeros(frames, dtype=np.int8)
    if start is None or end is None:
        return labels
    for i in range(frames):
        t = (i + 1) * CHUNK
        if end <= t <= end + int(0.4 * PIPELINE_RATE):
            labels[i] = 1
        elif start < t < end or end + int(0.4 * PIPELINE_RATE) < t <= end + PIPELINE_RATE:
            labels[i] = -1
    return labels


def make_examples(
    embeddings: SpeechEmbeddings,
    own_voice: np.ndarray,
    tts: TextToSpeech | None,
    *,
    voices: tuple[str, ...],
    seed: int,
    speak: Speak = espeak,
    piper_takes: int = 3,
    negatives_per_voice: int = 24,
) -> Iterator[Example]:
    """Stop phrases and other speech from each voice, each once or twice with a fresh mix;
    Piper's phrases at several speeds; then the appliance's own voice on its own."""
    rng = np.random.default_rng(seed)
    mixer = _Mixer(own_voice, rng)

    def example(phrase: np.ndarray, positive: bool) -> Example:
        audio, start, end = mixer.mix(phrase, rng.uniform(0.6, 1.3), 1.2)
        feats = embeddings.of_audio(audio)
        labels = _window_labels(len(feats), start, end) if positive else None
        if labels is None:
            labels = np.zeros(len(feats), dtype=np.int8)
        return Example(feats, labels)

    for voice in voices:
        for text in POSITIVE_PHRASES:
            phrase = speak(text, voice, int(rng.integers(120, 210)), int(rng.integers(25, 75)))
            yield example(phrase, True)
        for text in rng.choice(NEGATIVE_PHRASES, size=negatives_per_voice, replace=False):
            phrase = speak(str(text), voice, int(rng.integers(120, 210)), int(rng.integers(25, 75)))
            yield example(phrase, False)
    if tts is not None:
        for _ in range(piper_takes):
            for text in POSITIVE_PHRASES:
                yield example(tts_phrase(tts, text), True)
            for text in NEGATIVE_PHRASES[:20]:
                yield example(tts_phrase(tts, text), False)
    # Long stretches of its own voice at the level the canceller leaves and louder, and
    # loud through a canceller that starts cold (the first reply after a start, when
    # Speex has not adapted yet and leaves most of the voice in).
    for gain_db in (-12.0, -3.0):
        audio = own_voice.astype(np.float32) * 10 ** (gain_db / 20)
        audio += rng.normal(0, 10 ** (-55 / 20) * 32768, len(audio))
        feats = embeddings.of_audio(np.clip(audio, -32768, 32767).astype(np.int16))
        yield Example(feats, np.zeros(len(feats), dtype=np.int8))
    for gain_db in (-6.0, 0.0):
        feats = embeddings.of_audio(_through_cold_canceller(own_voice, gain_db, rng))
        yield Example(feats, np.zeros(len(feats), dtype=np.int8))


LONG_STRETCHES = 4
"""The own-voice recordings `make_examples` ends with (measured by the bench, not by
`evaluate`)."""


def _through_cold_canceller(
    own_voice: np.ndarray, gain_db: float, rng: np.random.Generator
) -> np.ndarray:
    from appliance.audio.aec import SpeexEchoCanceller

    played = own_voice.astype(np.float32)
    n = len(played) - len(played) % CHUNK
    delay = int(rng.uniform(0.01, 0.05) * PIPELINE_RATE)
    mic = np.zeros(n, dtype=np.float32)
    mic[delay:] = played[: n - delay] * 10 ** (gain_db / 20)
    mic += rng.normal(0, 10 ** (-55 / 20) * 32768, n)
    mic16 = np.clip(mic, -32768, 32767).astype(np.int16)
    played16 = np.clip(played[:n], -32768, 32767).astype(np.int16)
    return SpeexEchoCanceller().process(mic16, played16)  # 10 ms frames inside


def windows(examples: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """Flattened windows of WINDOW embeddings and their labels; ignored ones dropped."""
    xs, ys = [], []
    for ex in examples:
        x = stop_windows(ex.embeddings)
        y = ex.labels[WINDOW - 1 :]
        keep = y >= 0
        xs.append(x[keep])
        ys.append(y[keep])
    return np.concatenate(xs), np.concatenate(ys).astype(np.float32)


def train_head(
    x: np.ndarray, y: np.ndarray, *, hidden: int = 32, epochs: int = 40, seed: int = 0
) -> dict[str, np.ndarray]:
    """A one-hidden-layer network, trained with Adam on class-balanced cross-entropy."""
    rng = np.random.default_rng(seed)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-3
    xn = ((x - mean) / std).astype(np.float32)
    params = {
        "w1": (rng.normal(0, 1, (x.shape[1], hidden)) / np.sqrt(x.shape[1])).astype(np.float32),
        "b1": np.zeros(hidden, np.float32),
        "w2": (rng.normal(0, 1, (hidden, 1)) / np.sqrt(hidden)).astype(np.float32),
        "b2": np.zeros(1, np.float32),
    }
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    positive_weight = (len(y) - y.sum()) / max(1.0, y.sum())
    step, lr, batch, decay = 0, 3e-3, 256, 1e-4
    for _ in range(epochs):
        order = rng.permutation(len(xn))
        for at in range(0, len(order), batch):
            idx = order[at : at + batch]
            xb, yb = xn[idx], y[idx][:, None]
            h = np.maximum(0.0, xb @ params["w1"] + params["b1"])
            p = 1.0 / (1.0 + np.exp(-np.clip(h @ params["w2"] + params["b2"], -30, 30)))
            weight = np.where(yb > 0, positive_weight, 1.0)
            grad_out = weight * (p - yb) / len(idx)
            grads = {"w2": h.T @ grad_out, "b2": grad_out.sum(axis=0)}
            grad_h = (grad_out @ params["w2"].T) * (h > 0)
            grads["w1"] = xb.T @ grad_h + decay * params["w1"]
            grads["b1"] = grad_h.sum(axis=0)
            step += 1
            for key, grad in grads.items():
                m, v = moments[key]
                m[:] = 0.9 * m + 0.1 * grad
                v[:] = 0.999 * v + 0.001 * grad * grad
                m_hat, v_hat = m / (1 - 0.9**step), v / (1 - 0.999**step)
                params[key] -= (lr * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(np.float32)
    return {**params, "mean": mean.astype(np.float32), "std": std.astype(np.float32)}


@dataclass(frozen=True)
class Evaluation:
    recall: float
    """Share of held-out stop phrases (voices never trained on) detected."""
    false_alarms: int
    """Detections in held-out non-stop phrases."""
    negatives: int


def evaluate(
    model: StopWordModel,
    embeddings: SpeechEmbeddings,
    own_voice: np.ndarray,
    *,
    voices: tuple[str, ...] = HELD_OUT_VOICES,
    seed: int = 99,
    speak: Speak = espeak,
) -> Evaluation:
    examples = list(
        make_examples(
            embeddings, own_voice, None, voices=voices, seed=seed, speak=speak,
            negatives_per_voice=len(NEGATIVE_PHRASES),
        )
    )  # fmt: skip
    hits = positives = false_alarms = negatives = 0
    for ex in examples[:-LONG_STRETCHES]:
        found = model.detections(ex.embeddings) > 0
        if (ex.labels == 1).any():
            positives += 1
            hits += found
        else:
            negatives += 1
            false_alarms += found
    return Evaluation(hits / max(1, positives), false_alarms, negatives)


def own_voice_recording(tts: TextToSpeech, steady: TextToSpeech | None = None) -> np.ndarray:
    """Its own voice saying OWN_VOICE_TEXT; with `steady` (the same voice with Piper's
    variation off, as `tts.vary = false` speaks) both renderings one after the other."""
    own = tts_phrase(tts, OWN_VOICE_TEXT)
    if steady is None:
        return own
    return np.concatenate([own, tts_phrase(steady, OWN_VOICE_TEXT)])


def build_stop_model(
    embeddings: SpeechEmbeddings,
    tts: TextToSpeech,
    destination: Path,
    *,
    steady_tts: TextToSpeech | None = None,
    progress: Callable[[str], None] = lambda _: None,
    voices: tuple[str, ...] = TRAIN_VOICES,
    seed: int = 7,
) -> Evaluation:
    """Make the training recordings, train the head, check it on held-out voices, save."""
    started = time.monotonic()
    own_voice = own_voice_recording(tts, steady_tts)
    examples = []
    for index, ex in enumerate(
        make_examples(embeddings, own_voice, tts, voices=voices, seed=seed), start=1
    ):
        examples.append(ex)
        if index % 200 == 0:
            progress(f"stop keyword: {index} recordings made")
    x, y = windows(examples)
    progress(f"stop keyword: training on {len(y)} windows ({int(y.sum())} stop) …")
    params = train_head(x, y)
    model = StopWordModel(params)
    result = evaluate(model, embeddings, own_voice)
    model.save(destination, recipe=RECIPE_VERSION)
    progress(
        f"stop keyword: recall {result.recall:.0%} on unseen voices, "
        f"{result.false_alarms}/{result.negatives} false alarms, "
        f"{time.monotonic() - started:.0f} s"
    )
    return result


def prepare_stop_keyword(
    store: ModelStore,
    voice: str,
    *,
    progress: Callable[[str], None] = print,
    force: bool = False,
) -> Path:
    """Make the head in the models directory unless one by this recipe is there already."""
    from appliance.tts.piper import PiperTts
    from appliance.wake.stopword import FILE_NAME, recipe_of

    destination = Path(store.root) / FILE_NAME
    if not force and destination.is_file() and recipe_of(destination) == RECIPE_VERSION:
        progress(f"  ok       {FILE_NAME} (stop keyword, recipe {RECIPE_VERSION})")
        return destination
    progress("  making   the stop keyword head from espeak-ng and Piper speech (~5 min) …")
    embeddings = SpeechEmbeddings(
        store.path("oww-melspectrogram", "wake-features"),
        store.path("oww-embedding", "wake-features"),
    )
    tts = PiperTts(store.path(voice, "tts"))
    steady = PiperTts(store.path(voice, "tts"), vary=False)
    build_stop_model(
        embeddings, tts, destination, steady_tts=steady, progress=lambda m: progress(f"  {m}")
    )
    return destination
