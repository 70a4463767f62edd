"""Which command a transcript is: hassil over the sentence library, with the house's own
names in its slot lists, and rapidfuzz where whisper misheard a name or a word.

Three tries, each only when the one before found nothing:

1. **library**: the sentence as it was said (score 1).
2. **fuzzy name**: a sentence of the library with a device or room name that is not
   the house's ("turn on the porridge light"); the name is replaced by the closest one
   the house has, scored by rapidfuzz.
3. **fuzzy words**: words the library never uses ("cancel tiger") replaced by the
   closest word it does use ("timer"), then 1 and 2 again.

The score (0–1) says how sure the match is; the handler acts, asks or gives up on it.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hassil import (
    Intents,
    RecognizeResult,
    TextSlotList,
    TextSlotValue,
    recognize_all,
    recognize_best,
)
from hassil.intents import RangeSlotList, SlotList
from hassil.recognize import MISSING_ENTITY
from rapidfuzz import fuzz, process

from appliance.actions.numbers import parse_number, tokens
from appliance.sections.devices import DeviceConfig, normalise_name
from appliance.understanding import acoustic
from appliance.understanding.library import SentenceLibrary
from appliance.understanding.phonetic import SoundsLike
from appliance.understanding.phrases import NUMBER as _NUMBER
from appliance.understanding.phrases import house_phrases, named_timer_phrases
from appliance.understanding.phrases import words as _words

_LOGGER = logging.getLogger(__name__)
MAX_WORDS = 30
"""A longer transcript is not a command (whisper looping, a story): not matched at all."""
NAME_MIN_SCORE = 0.6
"""Below this a misheard name is not taken for any of the house's names."""
WORD_MIN_SCORE = 0.7
"""A word the library never uses is replaced only by a word at least this close."""
_WORD_MIN_LENGTH = 4
QUESTION_MIN_SCORE = 0.85
"""A question about a device is taken only when sure: a guess goes to the language model
(asking "Did you mean the bed light?" for "what is the speed of light" would be worse)."""
_QUESTIONS = {"HassGetState"}
SOUND_MIN_SCORE = 0.8
"""How alike (0–1) two names' or words' folded phonemes must be (understanding/phonetic.py)."""
SOUND_SCORE_CAP = 0.8
"""A match by sound alone scores at most this: below ACT_SCORE, so it is asked about."""
SNAP_MIN_SCORE = 0.89
"""How close a transcript must be to a sentence of the house to be snapped to it."""
SNAP_PENALTY = 0.1
"""A snapped sentence is a guess at the whole sentence: it acts only when it was 95 %
the same, else it is asked about."""
SNAP_NAMES = 60
"""Device names the snapping sentences are made with (the first ones configured)."""
BARE_SCORE = 0.8
BARE, BARE_AS_SAID, BARE_CORRECTED = "bare", "as said", "corrected"
"""Metadata of a command that switches a device with no verb ("the ceiling fan off")."""
UNKNOWN_NAME = "unknown_name"
"""Metadata of a command for a device the house does not have ("the garage light")."""
"""The score of a switching sentence with no verb ("the fan off"): asked about."""
_SWITCHING = {"HassTurnOn", "HassTurnOff", "HassToggle"}
_SWITCH_VERBS = {"turn", "switch", "put", "power", "toggle", "flip", "activate", "start",
                 "enable", "disable", "shut", "kill", "run", "stop", "deactivate", "make",
                 "set", "bring", "change", "cut"}  # fmt: skip
_MIN_LITERAL = 4
"""Letters of the sentence's own words (not names) a reading with an open name must
have matched: "turn on" does, "the" alone does not."""
_MAX_CORRECTIONS = 9
"""Versions of a sentence with corrected words that are tried."""
_MAX_READINGS = 200
"""Readings of one sentence with names left open that are weighed (they come lazily)."""

DOMAINS = {"light": "light", "lamp": "light", "fan": "fan", "switch": "switch",
           "relay": "switch", "plug": "switch", "heater": "switch", "socket": "switch"}  # fmt: skip
"""Our device kinds as Home Assistant's domains (the library's sentences use these)."""


@dataclass(frozen=True)
class Recognition:
    intent: str
    slots: dict[str, Any]
    score: float
    """1 as said; less when a name or a word was corrected."""
    path: str
    """library or fuzzy."""
    text: str
    """The sentence matched (with the corrections)."""
    corrected: tuple[tuple[str, str], ...] = ()
    """(heard, taken as) for every correction."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """The matched sentence's metadata in the library (e.g. too_long)."""
    response: str = "default"
    """Which of the library's response templates fits the sentence."""
    evidence: str = ""
    """What the audio said of a corrected sentence (`acoustic.weigh`), when it was asked."""


@dataclass
class _Attempt:
    text: str
    score: float
    corrected: list[tuple[str, str]]


PREPARED_SECONDS = 5.0
"""How long a pause's weighing (`Recognizer.prepare`) may wait for its turn to end: a
request ends at most `listen.max_pause_seconds` after its pause. An older one is of
other audio."""


@dataclass(frozen=True)
class Prepared:
    key: tuple[str, tuple[str, ...]]
    """The transcript and the timers running when it was weighed."""
    found: Recognition | None
    at: float = field(default_factory=time.monotonic)

    def fits(self, key: tuple[str, tuple[str, ...]]) -> bool:
        return key == self.key and time.monotonic() - self.at < PREPARED_SECONDS


@dataclass
class PreparedStats:
    kept: int = 0
    """Pauses whose transcript was weighed against its audio, and the weighing kept."""
    used: int = 0
    """Requests that ended on such words and took that weighing."""


class Recognizer:
    """Matches transcripts against the library with the house's slot lists."""

    def __init__(
        self,
        library: SentenceLibrary,
        devices: Sequence[DeviceConfig] = (),
        *,
        timer_names: Iterable[str] = (),
    ) -> None:
        self.library = library
        self.intents = Intents.from_dict(library.data)
        self.skip_words = list(library.data.get("skip_words", []))
        self._names = _names(devices)
        self._rooms = sorted({normalise_name(d.room) for d in devices if d.room})
        self.slot_lists: dict[str, SlotList] = {
            "name": TextSlotList(
                name="name",
                values=[
                    TextSlotValue.from_tuple((spoken, spoken, {"domain": DOMAINS[kind]}))
                    for spoken, (_, kind) in self._names.items()
                ],
            ),
            "area": TextSlotList.from_strings(self._rooms, name="area"),
            "floor": TextSlotList.from_strings([], name="floor"),
            # Lengths and levels out of range are recognised, then refused with the reason.
            "brightness": RangeSlotList(name="brightness", start=0, stop=1000),
            "timer_seconds": RangeSlotList(name="timer_seconds", start=0, stop=100),
            "timer_minutes": RangeSlotList(name="timer_minutes", start=0, stop=100),
            "timer_hours": RangeSlotList(name="timer_hours", start=0, stop=100),
        }
        # For reading a sentence with its names left open: the names themselves are not
        # tried there (500 devices made that pass 200 ms), only the sentence around them.
        self._open_slot_lists = {
            **self.slot_lists,
            "name": TextSlotList(name="name", values=[]),
            "area": TextSlotList(name="area", values=[]),
        }
        self._owners = {spoken: device for spoken, (device, _) in self._names.items()}
        self._choices = {
            "name": {name: _content(name) for name in self._names},
            "area": {room: _content(room) for room in self._rooms},
        }
        self._closest: dict[tuple[str, str], tuple[str, float] | None] = {}
        self.timer_names = sorted({normalise_name(n) for n in timer_names if n.strip()})
        self.vocabulary = _vocabulary(library.data, self._names, self._rooms)
        self._phrases: list[str] | None = None
        """The sentences the house can mean, for snapping (made on first need)."""
        self._with_timers: list[str] | None = None
        self._vocabulary_list = sorted(self.vocabulary)
        self._sounds = SoundsLike(library.language)
        self._sound_choices: dict[str, dict[str, str]] | None = None
        self._sound_vocabulary: dict[str, str] | None = None
        self.scorer: acoustic.Scorer | None = None
        """Scores sentences against the audio of the transcript (the STT engine's `score`),
        when the transcript came from speech: set by `actions_for`."""
        self.relisten: Callable[[str], str | None] | None = None
        """Transcribes the audio of a transcript again with the house's words as the
        prompt (`_listen_again`; the STT engine's `relisten`): set by `actions_for`."""
        self._words_of_the_house: set[str] | None = None
        self._prepared: Prepared | None = None
        """A pause's weighing (`prepare`), for the request if it ends on those words."""
        self._last_weighed: Prepared | None = None
        self.pause_weighings = PreparedStats()
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """hassil builds its number words and tries on first use (0.3–0.6 s): done at
        start, not in the first turn."""
        self.phrases()
        self._sounds_of_the_house()
        for sentence in (
            "set a timer for five minutes",
            "set the light to 50 percent",
            "set a timer for 3 days",
            "turn on the nothing here",
        ):
            self.recognize(sentence)

    def _sounds_of_the_house(self) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
        """How the names, rooms and the library's words sound (made on first need)."""
        if self._sound_choices is None or self._sound_vocabulary is None:
            choices = {slot: dict(zip(names, self._sounds.keys(names.values()), strict=True))
                       for slot, names in self._choices.items()}  # fmt: skip
            # Only the words a command starts with ("pause", "resume"), and only for the
            # transcript's first word: a question's words are not bent into a command's.
            names = {w for spoken in [*self._names, *self._rooms] for w in spoken.split()}
            words = sorted({p.split()[0] for p in self.phrases()} - names - _FILLER)
            keys = self._sounds.keys(words)
            self._sound_choices = choices
            self._sound_vocabulary = {w: k for w, k in zip(words, keys, strict=True) if k}
            self._kind_sounds = set(self._sounds.keys(sorted(_KIND_WORDS)))
        return self._sound_choices, self._sound_vocabulary

    def _closest_name(self, slot: str, heard: str) -> tuple[str, float] | None:
        """The house's name or room closest to what was heard: by spelling, else by
        sound. A match by sound alone is asked about, never acted on at once."""
        if set(heard.split()) & _PRONOUNS or _LATER.search(heard):
            return None  # "turn it on", "the porch light tomorrow": not a misheard name
        found = closest(heard, self._choices[slot], self._owners)
        if found is not None or not self._sounds.available:
            return found
        choices, _ = self._sounds_of_the_house()
        by_sound = closest(self._sounds.key(_content(heard)), choices[slot], self._owners,
                           min_score=SOUND_MIN_SCORE, kinds=self._kind_sounds)  # fmt: skip
        if by_sound is None:
            return None
        return by_sound[0], min(by_sound[1], SOUND_SCORE_CAP)

    def device_for(self, spoken: str) -> str | None:
        """The device a name slot's value stands for (aliases → the device's name)."""
        entry = self._names.get(normalise_name(spoken))
        return entry[0] if entry else None

    def recognize(self, text: str, *, weigh: bool = True) -> Recognition | None:
        """The command `text` is, if any, its name slot the device's own name ("front
        light" said: "porch light"). A transcript whisper wrote as several sentences
        ("Cancel Tiger. Cancel. Cancel.") is tried whole, then sentence by sentence.
        With a scorer (and `weigh`), a corrected sentence is then weighed against the
        audio."""
        with self._lock:
            key = (text, tuple(self.timer_names))
            prepared, self._prepared = self._prepared, None
            if weigh and prepared is not None and prepared.fits(key) and self._same_audio(text):
                found = prepared.found
                self.pause_weighings.used += 1
            else:
                found, _ = self._weighed(text, weigh=weigh, listen_again=True)
            if weigh:
                self._last_weighed = Prepared(key, found)
            else:
                self._prepared = prepared
        return self._settled(text, found)

    def prepare(self, text: str) -> bool:
        """At a pause, before the request is known to be over: recognise `text` (the pause's
        speculative transcript) and weigh it against its audio now, so that `recognize`
        finds it done if the request ends on these words. Never a second listen here: it
        would hold whisper while the speaker may go on. True when the weighing is kept
        (not when the audio was already gone, or only a second listen could settle it)."""
        with self._lock:
            key = (text, tuple(self.timer_names))
            if self._last_weighed is not None and self._last_weighed.fits(key):
                return False  # the turn ended first and weighed it itself
            found, complete = self._weighed(text, weigh=True, listen_again=False)
            if complete:
                self._prepared = Prepared(key, found)
                self.pause_weighings.kept += 1
            return complete

    def _same_audio(self, text: str) -> bool:
        """Is the audio the scorer holds still that of `text` (this turn's, not typed
        words or a later transcription)? Asked without a sentence to score: the scorer
        answers None when that audio is gone."""
        return self.scorer is not None and self.scorer(text, []) is not None

    def _weighed(
        self, text: str, *, weigh: bool, listen_again: bool
    ) -> tuple[Recognition | None, bool]:
        """`text` recognised and, unless it is a sure command, weighed against the audio;
        and whether that weighing is complete (every scoring answered, and no second
        listen left undone)."""
        found = self._recognize(text)
        # A device the house lacks may be one it has, misheard ("turn on the port
        # swipe"): the audio is asked about the house's names.
        sure = (found is not None and found.path == "library" and found.score >= 1
                and not found.metadata.get(UNKNOWN_NAME))  # fmt: skip
        scorer = self.scorer
        if not weigh or scorer is None or sure:
            return found, True
        answered: list[bool] = []

        def scored(heard: str, texts: Sequence[str]) -> list[float] | None:
            scores = scorer(heard, texts)
            answered.append(scores is not None)
            return scores

        try:
            found = acoustic.weigh(self, text, found, scored)
            if found is not None and found.metadata.get(BARE) == BARE_AS_SAID:
                found = acoustic.said_as_a_command(text, found, scored)
            # Not for a device the house lacks: the weighing of the house's
            # names is its check, and a second listen would cost every honest
            # "I don't know a device called garage light" a transcription.
            if found is None or found.score < acoustic.ACT_SCORE:
                if not listen_again:
                    return found, all(answered) and not self._worth_listening_again(text)
                found = self._listen_again(text, found, scored)
        except Exception:  # the text's own reading stands
            _LOGGER.exception("weighing %r against the audio failed", text)
            return found, False
        return found, all(answered)

    def _settled(self, text: str, found: Recognition | None) -> Recognition | None:
        """The last checks on a recognition, and its name slot the device's own name."""
        if found is not None and found.intent in _QUESTIONS and found.score < QUESTION_MIN_SCORE:
            return None  # "what is the speed of light" is not "what is the bed light"
        if not _fits(found, _clean(text)):
            return None
        if found is None or "name" not in found.slots:
            return found
        device = self._owners.get(normalise_name(str(found.slots["name"])))
        if device is None:
            return found
        return dataclasses.replace(found, slots={**found.slots, "name": device})

    def _recognize(self, text: str) -> Recognition | None:
        whole = _clean(text)
        if not whole or len(whole.split()) > MAX_WORDS:
            return None
        now = _before_a_later_time(whole)
        if now is not None:  # "turn off the bed light at 7": not now, and said so
            found = self._recognize(now)
            if found is not None and found.intent in DEVICE_INTENTS:
                return dataclasses.replace(found, metadata={**found.metadata, "later": True})
        self._closest.clear()
        tries = [whole, *(s for s in _sentences(text) if s != whole)]
        for said in tries:  # as said first: a looped sentence's clean copy wins
            found = self._exact(said)
            if _fits(found, said):
                return found
        for said in tries:
            found = self._with_names(_Attempt(said, 1.0, []))
            if _fits(found, said):
                return found
        for said in tries:
            for attempt in self._corrections(said):
                found = self._exact(attempt.text, attempt) or self._with_names(attempt)
                if _fits(found, said) and not self._guessed_timer_name(found):
                    return found
        for said in tries:
            found = self._snap(said)
            if _fits(found, said):
                return found
        return None

    def _listen_again(
        self, heard: str, found: Recognition | None, scorer: acoustic.Scorer
    ) -> Recognition | None:
        """A transcript with the house's words in it that is no clear command: the same
        audio transcribed again with the house's words as whisper's prompt. What that
        second listen heard is one more sentence to weigh against the audio (with the
        first transcript as the reference), never taken on its word: a prompt makes
        whisper hear the house's words in anything."""
        if self.relisten is None or not self._worth_listening_again(heard):
            return found
        again = self.relisten(heard)
        if not again or _clean(again) == _clean(heard):
            return found
        second = self._recognize(again)
        if second is None or not _fits(second, _clean(again)):
            _LOGGER.debug("heard again %r: no command", again)
            return found
        # Its nearest sentences too: "set the porch light right to 80 percent" was "set
        # the porch light brightness to 80 percent".
        nearest = self.snap_candidates(again, acoustic.SNAP_MIN_SCORE, acoustic.SNAP_CANDIDATES)
        weighed = acoustic.weigh(self, heard, found, lambda _, texts: scorer(again, texts),
                                 also=[second, *nearest], heard_again=again)  # fmt: skip
        _LOGGER.debug("heard again %r: %s", again, weighed)
        if weighed is not None and (found is None or weighed.text != found.text
                                    or weighed.score != found.score):  # fmt: skip
            evidence = f"{weighed.evidence}; " if weighed.evidence else ""
            return dataclasses.replace(weighed, evidence=f"{evidence}heard again: {again!r}")
        return found

    def _worth_listening_again(self, heard: str) -> bool:
        return self.relisten is not None and bool(set(_clean(heard).split()) & self._house_words())

    def _house_words(self) -> set[str]:
        """Words that make a transcript worth a second listen: the house's names and
        rooms, the kinds of device, and what timers and lists are said with."""
        if self._words_of_the_house is None:
            named = {w for spoken in [*self._names, *self._rooms] for w in spoken.split()}
            self._words_of_the_house = (named - _FILLER) | _KIND_WORDS | _COMMAND_NOUNS
        return self._words_of_the_house

    def phrases(self) -> list[str]:
        """Every sentence this house can mean (`phrases.house_phrases`, with at most
        `SNAP_NAMES` names), and its timer sentences again with each running timer's
        name."""
        if self._phrases is None:
            self._phrases = house_phrases(self.library, list(self._names)[:SNAP_NAMES],
                                           self._rooms)  # fmt: skip
            self._with_timers = None
        if self._with_timers is None:
            self._with_timers = self._phrases + named_timer_phrases(self._phrases,
                                                                     self.timer_names)  # fmt: skip
        return self._with_timers

    def use_timer_names(self, names: Iterable[str]) -> None:
        """The names of the timers now running ("cancel the pasta timer" is a sentence
        of the house while the pasta timer runs)."""
        named = sorted({normalise_name(n) for n in names if n.strip()})
        with self._lock:
            if named != self.timer_names:
                self.timer_names = named
                self._with_timers = None

    def _guessed_timer_name(self, found: Recognition | None) -> bool:
        """A corrected sentence about a timer whose name (free words) no timer has: the
        correction bent a misheard name ("the past a timer" → "the last a timer");
        snapping to the running timers' sentences does better."""
        if found is None or found.intent == "HassStartTimer" or "name" not in found.slots:
            return False
        about_a_timer = "Timer" in found.intent
        return about_a_timer and normalise_name(str(found.slots["name"])) not in self.timer_names

    def _snap(self, text: str) -> Recognition | None:
        """Speech-to-Phrase's idea on a transcript: the sentence of the house closest to
        what was heard ("set a time for five minutes" → "set a timer for 5 minutes"),
        when it is very close. Its numbers are the ones heard."""
        found = self.snap_candidates(text, SNAP_MIN_SCORE, 1)
        return found[0] if found else None

    def snap_candidates(self, text: str, min_score: float, limit: int) -> list[Recognition]:
        """The `limit` sentences of the house closest to `text` (at least `min_score`
        alike), with the numbers heard, as recognitions scored by their closeness."""
        heard, numbers = _numbers_out(_clean(text))
        if not numbers and len(heard.split()) < 2:
            return []
        found = []
        nearest = process.extract(heard, self.phrases(), scorer=fuzz.ratio, limit=limit,
                                  score_cutoff=min_score * 100)  # fmt: skip
        for phrase, ratio, _ in nearest:
            if phrase.split().count(_NUMBER) != len(numbers):
                continue
            words = iter(numbers)
            snapped = " ".join(next(words) if w == _NUMBER else w for w in phrase.split())
            result = self._match(snapped)
            if result is None or result.unmatched_entities:
                continue
            score = max(0.0, ratio / 100 - SNAP_PENALTY)
            found.append(self._recognized(result, snapped, score, [(text, snapped)]))
        return found

    def read(self, text: str, *, score: float) -> Recognition | None:
        """`text` (a sentence of the house, clean) as a fuzzy recognition of `score`."""
        result = self._match(text)
        if result is None or result.unmatched_entities:
            return None
        return self._recognized(result, text, score, [(text, text)])

    def same_words(self, said: str, sentence: str) -> bool:
        """Whether `said` (a transcript) is `sentence` word for word, numbers as
        digits or words alike ("Add five minutes." and "add 5 minutes")."""
        return _numbers_out(_clean(said)) == _numbers_out(_clean(sentence))

    def spoken_names(self) -> list[str]:
        """Every name and alias of the house's devices, as said."""
        return list(self._names)

    def spoken_name_in(self, text: str) -> str | None:
        """The longest device name or alias said in `text` (clean), if any."""
        said = f" {text} "
        found = [name for name in self._names if f" {name} " in said]
        return max(found, key=len) if found else None

    def _match(self, text: str, *, unmatched: bool = False) -> RecognizeResult | None:
        return recognize_best(
            text,
            self.intents,
            slot_lists=self.slot_lists,
            skip_words=self.skip_words,
            language=self.library.language,
            allow_unmatched_entities=unmatched,
            best_metadata_key="too_long",
            best_slot_name="name",
        )

    def _exact(self, text: str, attempt: _Attempt | None = None) -> Recognition | None:
        result = self._match(text)
        if result is None or result.unmatched_entities:
            return None
        if self._bare_switching(result, text):
            return self._recognized(result, text, BARE_SCORE, [(text, text)],
                                    said=attempt is None)  # fmt: skip
        if attempt is None:
            return _recognition(result, text, 1.0, "library", [])
        return self._recognized(result, text, attempt.score, attempt.corrected)

    def _with_names(self, attempt: _Attempt) -> Recognition | None:
        """A library sentence whose name or area is not the house's: the closest one.
        Of every way the sentence could be read with a name left open, the one whose
        open names come closest to the house's wins."""
        best: tuple[float, str, list[tuple[str, str]]] | None = None
        matches = recognize_all(
            attempt.text,
            self.intents,
            slot_lists=self._open_slot_lists,
            skip_words=self.skip_words,
            language=self.library.language,
            allow_unmatched_entities=True,
        )
        unknown: Recognition | None = None
        for result in itertools.islice(matches, _MAX_READINGS):
            if result.text_chunks_matched < _MIN_LITERAL:
                continue  # "[the] {name}": any words at all would be a name
            found = self._resolve_open_names(result, attempt)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
            if found is None and unknown is None:
                unknown = _unknown_device(result, attempt)
        if best is None:
            return unknown
        score, text, corrected = best
        result = self._match(text)
        if result is None or result.unmatched_entities:
            return None
        return self._recognized(result, text, score, corrected)

    def _recognized(
        self,
        result: RecognizeResult,
        text: str,
        score: float,
        corrected: list[tuple[str, str]],
        *,
        said: bool = False,
    ) -> Recognition:
        """A fuzzy recognition; one that switches a device with no verb is only asked
        about (`_bare_switching`): the doubt is in the words. Only one said as it was
        heard ("porch light on", `said`) may still act, when the audio shows it was no
        question nor statement (`acoustic.said_as_a_command`)."""
        found = _recognition(result, text, score, "fuzzy", corrected)
        if not self._bare_switching(result, text):
            return found
        bare = BARE_AS_SAID if said else BARE_CORRECTED
        return dataclasses.replace(found, score=min(found.score, BARE_SCORE),
                                   metadata={**found.metadata, BARE: bare})  # fmt: skip

    def _bare_switching(self, result: RecognizeResult, text: str) -> bool:
        """ "The ceiling fan off" with no verb: often a question ("is the …") whose first
        word whisper lost, or said of the device ("the kitchen light's on", snapped to
        "the kitchen lights on")."""
        english = self.library.language.split("-")[0] == "en"
        imperative = (result.intent_metadata or {}).get("imperative", False)
        return (english and result.intent.name in _SWITCHING and not imperative
                and not set(text.split()) & _SWITCH_VERBS)  # fmt: skip

    def _resolve_open_names(
        self, result: RecognizeResult, attempt: _Attempt
    ) -> tuple[float, str, list[tuple[str, str]]] | None:
        text, score, corrected = attempt.text, attempt.score, list(attempt.corrected)
        opened = [
            (slot, entity.text.strip())
            for slot, entity in result.unmatched_entities.items()
            if getattr(entity, "text", MISSING_ENTITY) != MISSING_ENTITY
        ]
        if not opened:
            return None
        for slot, heard in opened:
            choices = self._choices.get(slot)
            if not heard or not choices or set(heard.split()) & _NOT_IN_A_NAME:
                return None  # "the porch light is on" is said of it, not to it
            key = (slot, heard)
            if key not in self._closest:  # the same words come back in many readings
                self._closest[key] = self._closest_name(slot, heard)
            found = self._closest[key]
            if found is None:
                return None
            name, name_score = found
            text = _replace_words(text, heard, name)
            score = min(score, name_score)
            corrected.append((heard, name))
        return score, text, corrected

    def _corrections(self, text: str) -> list[_Attempt]:
        """The sentence with its words the library never uses replaced by close ones the
        library does use, most likely first (at most `_MAX_CORRECTIONS` versions)."""
        words = text.split()
        options: list[list[tuple[int, str, float]]] = []
        for index, word in enumerate(words):
            if index == 0 and word in self.vocabulary:
                # A first word the library knows but no command starts with: whisper's
                # "and milk to the shopping list" for "add".
                starts_commands = word in self._sounds_of_the_house()[1]
                near = [] if starts_commands else self._sounding_like(index, word, {word})
                if near:
                    options.append([(index, word, 1.0), *near])
                continue
            if word in self.vocabulary or len(word) < _WORD_MIN_LENGTH:
                continue
            if parse_number([word], 0) is not None:  # "four" may be "for"; it is a number
                continue
            near = process.extract(word, self._vocabulary_list, scorer=fuzz.ratio, limit=3)
            near = [(index, w, s / 100) for w, s, _ in near if s / 100 >= WORD_MIN_SCORE]
            if index == 0:
                near += self._sounding_like(index, word, {w for _, w, _ in near})
            if near:
                options.append(near)
        if not options:
            return []
        attempts = []
        for combination in itertools.islice(itertools.product(*options), 27):
            changed = list(words)
            for index, word, _ in combination:
                changed[index] = word
            score = min(score for _, _, score in combination)
            corrected = [(words[i], word) for i, word, _ in combination if words[i] != word]
            if not corrected:
                continue
            attempts.append(_Attempt(" ".join(changed), score, corrected))
        attempts.sort(key=lambda a: -a.score)
        return attempts[:_MAX_CORRECTIONS]

    def _sounding_like(self, index: int, word: str, have: set[str]) -> list[tuple[int, str, float]]:
        """The words commands start with that sound like `word` ("post": pause), at a
        score that asks rather than acts."""
        if not self._sounds.available:
            return []
        _, vocabulary = self._sounds_of_the_house()
        key = self._sounds.key(word)
        if not key:
            return []
        near = process.extract(key, vocabulary, scorer=fuzz.ratio, limit=3,
                               score_cutoff=SOUND_MIN_SCORE * 100)  # fmt: skip
        return [(index, w, SOUND_SCORE_CAP) for _, _, w in near if w not in have]


def closest(
    heard: str,
    choices: Sequence[str] | dict[str, str],
    owners: dict[str, str] | None = None,
    *,
    min_score: float = 0.0,
    kinds: set[str] | None = None,
) -> tuple[str, float] | None:
    """The choice closest to a misheard name, with its score (0–1), if any is close
    enough; None when two choices are as close (that is not a match, it is a guess).
    `choices` may map each choice to its words without fillers, worked out once; `owners`
    maps a choice to what it names (several names of one device are no rivals).

    The score is the whole name's similarity, unless the words that tell the names
    apart are unlike: "garage light" is 67 % like "bed light" as a whole, but "garage"
    is not "bed" (22 %), so it scores the mean of the two; "porridge" is 46 % "porch".
    A heard name with more than one word beyond the choice's is a sentence, not a name."""
    spoken = _content(heard)
    if not spoken or not choices:
        return None
    contents = choices if isinstance(choices, dict) else {c: _content(c) for c in choices}
    # rapidfuzz ranks every choice in C++; only the few best are scored word by word.
    least = max(min_score, NAME_MIN_SCORE)
    near = process.extract(spoken, contents, scorer=fuzz.ratio, limit=_NEAREST,
                           score_cutoff=least * 100 * 0.8)  # fmt: skip
    scored = [
        (_name_score(spoken, name, _KIND_WORDS if kinds is None else kinds), choice)
        for name, _, choice in near
        if len(spoken.split()) <= len(name.split()) + 1
    ]
    scored.sort(key=lambda item: -item[0])
    if not scored or scored[0][0] < least:
        return None
    owner = owners.get(scored[0][1], scored[0][1]) if owners else scored[0][1]
    rivals = [score for score, choice in scored[1:]
              if (owners.get(choice, choice) if owners else choice) != owner]  # fmt: skip
    if rivals and scored[0][0] - rivals[0] < 0.05:
        return None  # two devices as close: a guess, not a match
    return scored[0][1], round(scored[0][0], 3)


def _name_score(spoken: str, name: str, kinds: set[str]) -> float:
    whole = fuzz.ratio(spoken, name) / 100
    heard_words, name_words = spoken.split(), name.split()
    shared = set(heard_words) & set(name_words) & kinds
    own_heard = " ".join(w for w in heard_words if w not in shared)
    own_name = " ".join(w for w in name_words if w not in shared)
    if not shared or not own_heard or not own_name:
        return whole
    own = fuzz.ratio(own_heard, own_name) / 100
    return whole if own >= _OWN_WORDS_MIN else (whole + own) / 2


def timed_recognize(recognizer: Recognizer, text: str) -> tuple[Recognition | None, float]:
    started = time.perf_counter()
    found = recognizer.recognize(text)
    return found, time.perf_counter() - started


_FILLER = {"the", "my", "a", "an", "our", "this", "that"}
_OWN_WORDS_MIN = 0.4
_NEAREST = 8
_COMMAND_NOUNS = {"timer", "timers", "list", "minute", "minutes", "hour", "hours", "seconds",
                  "percent", "brightness"}  # fmt: skip
_KIND_WORDS = {"light", "lights", "lamp", "lamps", "fan", "fans", "switch", "plug", "socket",
               "heater", "relay"}  # fmt: skip


def _content(phrase: str) -> str:
    return " ".join(w for w in normalise_name(phrase).split() if w not in _FILLER)


def _clean(text: str) -> str:
    """Lower case, whisper's punctuation gone, a request said twice over kept once
    ("Cancel timer. Cancel timer.")."""
    sentences = [s.strip() for s in re.split(r"[.!?]+", text) if s.strip()]
    unique = list(dict.fromkeys(_words(s) for s in sentences))
    joined = " ".join(u for u in unique if u)
    return joined


_PRONOUNS = {"it", "that", "this", "them", "those", "these", "everything", "something",
             "anything", "i", "you", "he", "she", "we", "they"}  # fmt: skip
_NOT_IN_A_NAME = {"on", "off", "is", "are", "was", "were", "isn't", "aren't"}
"""Words an open {name} swallowed from the sentence around it: no device's name."""
DEVICE_INTENTS = {"HassTurnOn", "HassTurnOff", "HassToggle", "HassLightSet"}
"""Commands whose {name} is a device. Not questions ("what is {name}" is most questions)."""
_YES_NO_QUESTION = {"is", "are", "was", "were", "does", "do", "did", "has", "have", "isn't",
                    "aren't", "why", "who", "when", "where", "what", "which", "how",
                    "should", "shall"}  # fmt: skip
"""First words of a question that asks, not tells ("are the lights on", "why is the
kitchen light on"): never a command that changes a device ("can you turn on…" and
"could you…" are requests)."""
_LATER = re.compile(r"\b(?:tomorrow|tonight|later|at (?:\d|noon|midnight|one|two|three|four|"
                    r"five|six|seven|eight|nine|ten|eleven|twelve)|in (?:a|an|half an|\d+|"
                    r"one|two|three|four|five|ten|fifteen|twenty|thirty|a few|a couple of) "
                    r"(?:minutes?|hours?|seconds?)|in a (?:while|bit)|in the (?:morning|"
                    r"afternoon|evening)|every (?:day|night|morning|afternoon|evening|hour|"
                    r"week|weekday|monday|tuesday|wednesday|thursday|friday|saturday|"
                    r"sunday))\b")  # fmt: skip
"""A later time a request is put at: nothing here does things later."""


def _before_a_later_time(text: str) -> str | None:
    """The request before a later time it is put at ("turn off the bed light" of "…
    at 7"); None when it names none."""
    found = _LATER.search(text)
    if found is None or found.start() == 0:
        return None
    return text[: found.start()].strip() or None


def _fits(found: Recognition | None, said: str) -> bool:
    """`found` is there and can be what `said` means."""
    if found is None:
        return False
    words = said.split()
    first = words[0] if words else ""
    if found.intent in DEVICE_INTENTS and first in _YES_NO_QUESTION:
        return False
    # "the kitchen one" answers "which one?": not the kitchen light at 1 percent.
    return not (found.intent == "HassLightSet" and words[-1:] == ["one"])


def _unknown_device(result: RecognizeResult, attempt: _Attempt) -> Recognition | None:
    """ "turn on the garage light" where there is none: a command for a device the house
    does not have (said so, rather than left to the language model). Only a short name
    counts: a long one is a sentence the library's {name} swallowed."""
    opened = {
        slot: entity.text.strip()
        for slot, entity in result.unmatched_entities.items()
        if getattr(entity, "text", MISSING_ENTITY) != MISSING_ENTITY
    }
    heard = _content(opened.get("name", ""))
    if result.intent.name not in DEVICE_INTENTS or set(opened) != {"name"}:
        return None
    if attempt.corrected:  # a guessed word and an unknown name: not sure it is a command
        return None
    if not heard or len(heard.split()) > 3 or set(heard.split()) & _PRONOUNS:
        return None  # "turn it off": what "it" is, the language model may know
    if set(heard.split()) & _NOT_IN_A_NAME:
        return None  # "turn that off" read as a device called "off"; "the fan is off"
    slots = {name: entity.value for name, entity in result.entities.items()}
    slots["name"] = heard
    return Recognition(result.intent.name, slots, attempt.score, "library", attempt.text,
                       metadata={UNKNOWN_NAME: True})  # fmt: skip


def _numbers_out(text: str) -> tuple[str, list[str]]:
    """The sentence with each number (digits or words) as `_NUMBER`, and the numbers."""
    words = tokens(text)
    out: list[str] = []
    numbers: list[str] = []
    i = 0
    while i < len(words):
        found = parse_number(words, i) if words[i] not in ("a", "an") else None
        if found is None:
            out.append(words[i])
            i += 1
            continue
        value, i = found
        numbers.append(str(int(value)) if float(value).is_integer() else str(value))
        out.append(_NUMBER)
    return " ".join(out), numbers


def _sentences(text: str) -> list[str]:
    parts = [_words(s) for s in re.split(r"[.!?]+", text)]
    return sorted({p for p in parts if p}, key=lambda p: -len(p))


def _replace_words(text: str, old: str, new: str) -> str:
    pattern = re.compile(rf"\b{re.escape(old.lower())}\b")
    return pattern.sub(new, text, count=1)


def _names(devices: Sequence[DeviceConfig]) -> dict[str, tuple[str, str]]:
    """Every spoken name → (the device's name, its kind): names and aliases, and, where
    only one device answers to them, the name without its kind ("coffee maker" for the
    coffee maker plug) and its room with its kind ("living room light")."""
    names: dict[str, tuple[str, str]] = {}
    for device in devices:
        for name in device.names:
            names.setdefault(normalise_name(name), (device.name, device.kind))
    implied: dict[str, set[str]] = {}
    kinds = {d.name: d.kind for d in devices}
    for device in devices:
        for name in device.names:
            words = normalise_name(name).split()
            if len(words) > 1 and words[-1] in _KIND_WORDS:
                implied.setdefault(" ".join(words[:-1]), set()).add(device.name)
        if device.room:
            for kind in {device.kind, *(w for w in _KIND_WORDS if w == device.kind)}:
                implied.setdefault(f"{normalise_name(device.room)} {kind}", set()).add(device.name)
    for spoken, owners in implied.items():
        if len(owners) == 1 and spoken not in names:
            owner = owners.pop()
            names[spoken] = (owner, kinds[owner])
    return names


def _vocabulary(
    data: dict[str, Any], names: dict[str, tuple[str, str]], rooms: Sequence[str]
) -> set[str]:
    """Every literal word of the library's sentences and rules, and the house's names."""
    words: set[str] = set()

    def add(template: str) -> None:
        template = re.sub(r"\{[^}]*\}|<[^>]*>", " ", template.lower())
        # "minute[s]" is both "minute" and "minutes"
        joined = re.sub(r"\[([a-z']*)\]", r"\1", template)
        words.update(re.findall(r"[a-z']+", template))
        words.update(re.findall(r"[a-z']+", joined))

    for intent in data.get("intents", {}).values():
        for block in intent.get("data", []):
            for sentence in block.get("sentences", []):
                add(sentence)
    for rule in data.get("expansion_rules", {}).values():
        add(rule)
    for spoken in [*names, *rooms]:
        words.update(spoken.split())
    return {w.strip("'") for w in words if w.strip("'")}


def _recognition(
    result: RecognizeResult, text: str, score: float, path: str, corrected: list[tuple[str, str]]
) -> Recognition:
    slots = {name: entity.value for name, entity in result.entities.items()}
    for key, value in (result.context or {}).items():
        if key == "domain" and "domain" not in slots:
            slots["domain"] = value
    return Recognition(
        intent=result.intent.name,
        slots=slots,
        score=round(score, 3),
        path=path,
        text=text,
        corrected=tuple(corrected),
        metadata=dict(result.intent_metadata or {}),
        response=result.response or "default",
    )
