"""How words sound, for names and command words whisper wrote as other words that sound
alike ("porridge light" for the porch light, "post the timer" for pause).

espeak-ng (the phonemizer inside piper-tts, which the appliance has for its voice) gives
each word's phonemes; they are folded to broad classes so that what a small speech model
confuses compares equal: every vowel one symbol, voiced and voiceless consonants alike
(d/t, b/p, z/s, dʒ/tʃ), stress and length dropped. rapidfuzz then compares the folded
keys as it compares spellings.

Without espeak-ng (piper-tts missing) there are no keys and matching is by spelling only.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Iterable

_LOGGER = logging.getLogger(__name__)

_VOWELS = set("aeiouyæɑɒɔəɚɛɜɝɪʊʌɐᵻøœɯɤɨʉɞɘɵɶ")
_FOLD = {
    "b": "p", "d": "t", "ɡ": "k", "g": "k", "v": "f", "z": "s", "ʒ": "ʃ", "ð": "θ",
    "ɾ": "t", "ʔ": "t", "ɹ": "r", "ɻ": "r", "ʁ": "r", "ʀ": "r", "ɫ": "l", "ŋ": "n",
    "ç": "ʃ", "x": "k", "ɕ": "ʃ", "ʑ": "ʃ",
}  # fmt: skip
_DROP = set("ˈˌːˑ‿ʲʰʷ̩̃-'")
_VOICES = {"en": "en-us"}
"""espeak-ng voices where the language code alone is not one."""


def fold(phonemes: str) -> str:
    """Phonemes to their broad classes; words stay apart by spaces."""
    out: list[str] = []
    for char in unicodedata.normalize("NFD", phonemes):
        if unicodedata.combining(char) or char in _DROP:
            continue
        if char.isspace():
            if out and out[-1] != " ":
                out.append(" ")
            continue
        char = "a" if char in _VOWELS else _FOLD.get(char, char)
        if char == "a" and out and out[-1] == "a":
            continue  # a diphthong is one vowel
        out.append(char)
    return "".join(out).strip()


class SoundsLike:
    """Folded phoneme keys for a language, cached; `available` is False without espeak-ng."""

    def __init__(self, language: str) -> None:
        self.voice = _VOICES.get(language.split("-")[0], language.lower())
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()
        self._bridge = _bridge()
        self.available = self._bridge is not None

    def key(self, text: str) -> str:
        """The folded key of a word or a few words ("" without espeak-ng)."""
        found = self._cache.get(text)
        if found is None:
            found = self.keys([text])[0]
        return found

    def keys(self, texts: Iterable[str]) -> list[str]:
        """Keys for many words at once (one espeak-ng call: 261 words in 6 ms)."""
        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache and t.strip()]
        if missing and self._bridge is not None:
            # One clause per text: espeak-ng returns a clause at every comma.
            with self._lock:
                try:
                    self._bridge.set_voice(self.voice)
                    clauses = self._bridge.get_phonemes(
                        ", ".join(t.replace(",", " ") for t in missing)
                    )
                except Exception as err:  # an unknown voice: spelling only from now on
                    _LOGGER.warning("no phonetic matching for %r: %s", self.voice, err)
                    self._bridge, self.available = None, False
                    clauses = []
            if len(clauses) == len(missing):
                for text, (phonemes, _, _) in zip(missing, clauses, strict=True):
                    self._cache[text] = fold(phonemes)
            elif len(missing) > 1:  # espeak-ng split a text itself: one at a time
                for text in missing:
                    self.keys([text])
        return [self._cache.get(t, "") for t in texts]


def _bridge() -> object | None:
    try:
        from piper import espeakbridge
        from piper.phonemize_espeak import ESPEAK_DATA_DIR

        espeakbridge.initialize(str(ESPEAK_DATA_DIR))
    except Exception as err:  # noqa: BLE001 - any failure means: spelling only
        _LOGGER.info("espeak-ng not available (%s): names are matched by spelling only", err)
        return None
    return espeakbridge
