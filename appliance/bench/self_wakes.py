"""`appliance bench`: false wakes (and false "stop"s) while the appliance's own speech
plays back into the microphone, with and without the echo canceller."""

from __future__ import annotations

import numpy as np

from appliance.pipeline import Engines
from appliance.testing.speech import tts_phrase

_OWN_SPEECH = (
    "The capital of France is Paris.",
    "I am Jarvis, your voice assistant, and I run on this little board.",
    "The moon orbits the Earth about once every twenty seven days.",
    "Sure, I can set a timer for ten minutes.",
    "Hey, that is a good question; let me think about it.",
    "Jarvis here. The kitchen light is now on.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "Sorry, something went wrong. Please try again.",
)


def _room_echo(played: np.ndarray, gain_db: float = -6.0) -> np.ndarray:
    """The speaker's sound as the microphone hears it (as in testing.echo.EchoRoom)."""
    out = np.zeros(len(played), dtype=np.float64)
    for delay, gain in ((0.03, 1.0), (0.045, 0.4), (0.07, 0.15)):
        shift = int(delay * 16000)
        out[shift:] += gain * played[: len(played) - shift]
    return out * 10 ** (gain_db / 20)


_JARVIS_REPLIES = (
    "I am Jarvis, your voice assistant, and I run on this little board.",
    "Jarvis here. The kitchen light is now on.",
    "Hello, this is Jarvis. The timer is set for ten minutes.",
    "Sure. Jarvis can do that. The porch light is off now.",
    "The capital of France is Paris. Ask Jarvis anything else.",
    "Hey, Jarvis speaking! Seventeen times twenty three is three hundred and ninety one.",
)
"""Replies that say the wake word early, in the first seconds of a reply."""


def self_wakes(engines: Engines, minutes: float) -> dict[str, float]:
    """False wakes (and false "stop"s, with the keyword head) while the appliance's own
    speech (mentioning "Jarvis") plays back into the microphone at -6 dB, scored as the
    pipeline scores barge-ins (barge_in.barge_in_threshold), with and without the Speex
    echo canceller. Per hour of its own speech. Then replies that say "Jarvis" in their
    first seconds, one after another: with the canceller kept between replies and the
    double-talk gate (as the pipeline does), against the canceller reset before each reply
    and no gate (as it did before), in the same run."""
    from appliance.audio.aec import NoEchoCanceller, SpeexEchoCanceller
    from appliance.pipeline.barge_in import KeptEnergy, barge_in_threshold
    from appliance.wake.stopword import WINDOW

    assert engines.wake is not None
    phrases = [tts_phrase(engines.tts, text) for text in _OWN_SPEECH]
    speech: list[np.ndarray] = []
    while sum(len(p) for p in speech) < minutes * 60 * 16000:
        speech += phrases
    played = np.concatenate(speech)
    rng = np.random.default_rng(3)

    def in_the_room(played: np.ndarray) -> np.ndarray:
        mic = np.clip(_room_echo(played) + rng.normal(0, 30, len(played)), -32768, 32767)
        return mic.astype(np.int16)

    mic = in_the_room(played)
    hours = len(played) / 16000 / 3600
    figures: dict[str, float] = {"own_speech_minutes": hours * 60}
    wake = engines.wake
    detector_threshold = getattr(wake, "threshold", 0.5)
    embeddings = getattr(wake, "embeddings", None)

    def listen(canceller, kept, mic, played, *, gate: bool = True) -> tuple[int, int]:
        wakes = stops = 0
        for i in range(0, len(mic) - 1279, 1280):
            cleaned = canceller.process(mic[i : i + 1280], played[i : i + 1280])
            kept.add(mic[i : i + 1280], cleaned)
            threshold = (
                barge_in_threshold(canceller.active, kept, None, detector_threshold)
                if gate
                else None
            )
            wakes += wake.process(cleaned, threshold) is not None
            if engines.stop is not None and embeddings is not None:
                # As the pipeline takes them: behind the double-talk gate with AEC.
                allowed = not canceller.active or kept.someone_else()
                stops += engines.stop.check(embeddings.recent(WINDOW), allowed=allowed) is not None
        return wakes, stops

    for name, canceller in (("speex", SpeexEchoCanceller()), ("no_aec", NoEchoCanceller())):
        wake.reset()
        wakes, stops = listen(canceller, KeptEnergy(chunks=WINDOW), mic, played)
        figures[f"{name}_wakes"] = float(wakes)
        figures[f"{name}_per_hour"] = wakes / hours
        if engines.stop is not None:
            figures[f"{name}_stops_per_hour"] = stops / hours

    replies = [np.concatenate([np.zeros(8000, np.int16), tts_phrase(engines.tts, text)])
               for text in _JARVIS_REPLIES]  # fmt: skip
    figures["jarvis_replies"] = float(len(replies))
    for name, reset_each, gate in (
        ("jarvis_woke", False, True),
        ("jarvis_woke_before", True, False),
    ):
        canceller = SpeexEchoCanceller()
        woke = 0
        for reply in replies:
            if reset_each:
                canceller.reset()
            wake.reset()
            wakes, _ = listen(canceller, KeptEnergy(chunks=WINDOW), in_the_room(reply), reply,
                              gate=gate)  # fmt: skip
            woke += wakes > 0
        figures[name] = float(woke)
    wake.reset()
    return figures
