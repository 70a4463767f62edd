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
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

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

from appliance.actions.numbers import parse_number
from appliance.sections.devices import DeviceConfig, normalise_name
from appliance.understanding import acoustic
from appliance.understanding.library import SentenceLibrary
from appliance.understanding.phonetic import SoundsLike
from appliance.understanding.phrases import NUMBER as _NUMBER
from appliance.understanding.phrases import house_phrases, named_timer_phrases
from appliance.understanding.recognition import (
    COMMAND_NOUNS,
    DEVICE_INTENTS,
    DOMAINS,
    FILLER,
    KIND_WORDS,
    LATER,
    NOT_IN_A_NAME,
    PRONOUNS,
    UNKNOWN_NAME,
    Attempt,
    Recognition,
    before_a_later_time,
    clean,
    closest,
    content_words,
    fits,
    numbers_out,
    recognition_of,
    replace_words,
    sentences_in,
    spoken_names_of,
    unknown_device,
    vocabulary_of,
)

_LOGGER = logging.getLogger(__name__)
MAX_WORDS = 30
"""A longer transcript is not a command (whisper looping, a story): not matched at all."""
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
"""The score of a switching sentence with no verb ("the fan off"): asked about."""
BARE, BARE_AS_SAID, BARE_CORRECTED = "bare", "as said", "corrected"
"""Metadata of a command that switches a device with no verb ("the ceiling fan off")."""
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
        self._names = spoken_names_of(devices)
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
            "name": {name: content_words(name) for name in self._names},
            "area": {room: content_words(room) for room in self._rooms},
        }
        self._closest: dict[tuple[str, str], tuple[str, float] | None] = {}
        self.timer_names = sorted({normalise_name(n) for n in timer_names if n.strip()})
        self.vocabulary = vocabulary_of(library.data, self._names, self._rooms)
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
            words = sorted({p.split()[0] for p in self.phrases()} - names - FILLER)
            keys = self._sounds.keys(words)
            self._sound_choices = choices
            self._sound_vocabulary = {w: k for w, k in zip(words, keys, strict=True) if k}
            self._kind_sounds = set(self._sounds.keys(sorted(KIND_WORDS)))
        return self._sound_choices, self._sound_vocabulary

    def _closest_name(self, slot: str, heard: str) -> tuple[str, float] | None:
        """The house's name or room closest to what was heard: by spelling, else by
        sound. A match by sound alone is asked about, never acted on at once."""
        if set(heard.split()) & PRONOUNS or LATER.search(heard):
            return None  # "turn it on", "the porch light tomorrow": not a misheard name
        found = closest(heard, self._choices[slot], self._owners)
        if found is not None or not self._sounds.available:
            return found
        choices, _ = self._sounds_of_the_house()
        by_sound = closest(self._sounds.key(content_words(heard)), choices[slot], self._owners,
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
        if not fits(found, clean(text)):
            return None
        if found is None or "name" not in found.slots:
            return found
        device = self._owners.get(normalise_name(str(found.slots["name"])))
        if device is None:
            return found
        return dataclasses.replace(found, slots={**found.slots, "name": device})

    def _recognize(self, text: str) -> Recognition | None:
        whole = clean(text)
        if not whole or len(whole.split()) > MAX_WORDS:
            return None
        now = before_a_later_time(whole)
        if now is not None:  # "turn off the bed light at 7": not now, and said so
            found = self._recognize(now)
            if found is not None and found.intent in DEVICE_INTENTS:
                return dataclasses.replace(found, metadata={**found.metadata, "later": True})
        self._closest.clear()
        tries = [whole, *(s for s in sentences_in(text) if s != whole)]
        for said in tries:  # as said first: a looped sentence's clean copy wins
            found = self._exact(said)
            if fits(found, said):
                return found
        for said in tries:
            found = self._with_names(Attempt(said, 1.0, []))
            if fits(found, said):
                return found
        for said in tries:
            for attempt in self._corrections(said):
                found = self._exact(attempt.text, attempt) or self._with_names(attempt)
                if fits(found, said) and not self._guessed_timer_name(found):
                    return found
        for said in tries:
            found = self._snap(said)
            if fits(found, said):
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
        if not again or clean(again) == clean(heard):
            return found
        second = self._recognize(again)
        if second is None or not fits(second, clean(again)):
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
        return self.relisten is not None and bool(set(clean(heard).split()) & self._house_words())

    def _house_words(self) -> set[str]:
        """Words that make a transcript worth a second listen: the house's names and
        rooms, the kinds of device, and what timers and lists are said with."""
        if self._words_of_the_house is None:
            named = {w for spoken in [*self._names, *self._rooms] for w in spoken.split()}
            self._words_of_the_house = (named - FILLER) | KIND_WORDS | COMMAND_NOUNS
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
        heard, numbers = numbers_out(clean(text))
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
        return numbers_out(clean(said)) == numbers_out(clean(sentence))

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

    def _exact(self, text: str, attempt: Attempt | None = None) -> Recognition | None:
        result = self._match(text)
        if result is None or result.unmatched_entities:
            return None
        if self._bare_switching(result, text):
            return self._recognized(result, text, BARE_SCORE, [(text, text)],
                                    said=attempt is None)  # fmt: skip
        if attempt is None:
            return recognition_of(result, text, 1.0, "library", [])
        return self._recognized(result, text, attempt.score, attempt.corrected)

    def _with_names(self, attempt: Attempt) -> Recognition | None:
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
                unknown = unknown_device(result, attempt)
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
        found = recognition_of(result, text, score, "fuzzy", corrected)
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
        self, result: RecognizeResult, attempt: Attempt
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
            if not heard or not choices or set(heard.split()) & NOT_IN_A_NAME:
                return None  # "the porch light is on" is said of it, not to it
            key = (slot, heard)
            if key not in self._closest:  # the same words come back in many readings
                self._closest[key] = self._closest_name(slot, heard)
            found = self._closest[key]
            if found is None:
                return None
            name, name_score = found
            text = replace_words(text, heard, name)
            score = min(score, name_score)
            corrected.append((heard, name))
        return score, text, corrected

    def _corrections(self, text: str) -> list[Attempt]:
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
            attempts.append(Attempt(" ".join(changed), score, corrected))
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


def timed_recognize(recognizer: Recognizer, text: str) -> tuple[Recognition | None, float]:
    started = time.perf_counter()
    found = recognizer.recognize(text)
    return found, time.perf_counter() - started
