"""The sentences the house can mean, written out: what a misheard transcript is snapped
to and what the audio is asked about (`Recognizer.snap_candidates`, `acoustic.weigh`).

Two sources, each as plain lower-case words with every number as `NUMBER`:

- the library's Speech-to-Phrase set for the device intents, with the house's names and
  rooms (the library's full templates for them run to millions of sentences);
- the library's full templates, ours among them, for the intents with no device in them
  (timers, the time, the date: about 6,000 sentences): "what timers do I have" is in
  those and not in the Speech-to-Phrase set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from hassil import Intents, TextSlotList, sample_intents
from hassil.intents import RangeSlotList, SlotList

from appliance.understanding.library import SentenceLibrary

NUMBER = "7"
"""Stands for any number in the sentences."""
DEVICE_INTENTS = {"HassTurnOn", "HassTurnOff", "HassLightSet", "HassGetState"}
"""Sentences with a device or room in them: from the Speech-to-Phrase set."""
OTHER_INTENTS = {
    "HassStartTimer", "HassCancelTimer", "HassCancelAllTimers", "HassPauseTimer",
    "HassUnpauseTimer", "HassTimerStatus", "HassIncreaseTimer", "HassDecreaseTimer",
    "HassGetCurrentTime", "HassGetCurrentDate",
}  # fmt: skip
"""Sentences with no device in them: the library's full templates."""
_PLACEHOLDER = "\x00"
"""Fills wildcards (a timer's name, a later command): its sentences are left out."""
_THE_TIMER = re.compile(r"\b(?:the|my) timer\b")
_UNITS = {"min": "minutes", "mins": "minutes", "sec": "seconds", "secs": "seconds",
          "hr": "hours", "hrs": "hours"}  # fmt: skip
_ABBREVIATED = re.compile(r"(\d)\s*(mins?|secs?|hrs?)\b")
"""Whisper sometimes writes "10 min" for "ten minutes"."""


def words(text: str) -> str:
    """`text` as plain lower-case words ("50%" → "50 percent", "10 min" → "10 minutes")."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"(\d)\s*%", r"\1 percent", text)
    text = _ABBREVIATED.sub(lambda m: m[1] + " " + _UNITS[m[2]], text)
    text = re.sub(r"[^\w'\s-]", " ", text).replace("-", " ")
    return _STUTTERED_NUMBER.sub(r"\1", " ".join(text.split()))


_STUTTERED_NUMBER = re.compile(
    r"\b(\d+|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
    r"seventy|eighty|ninety)(?: \1\b)+"
)
"""A number said twice over, as people do when they hesitate ("for ten, ten minutes"):
said once."""


def house_phrases(
    library: SentenceLibrary, names: Sequence[str], rooms: Sequence[str]
) -> list[str]:
    """Every sentence of the two sources for a house with these names and rooms."""
    from home_assistant_intents import get_speech_to_phrase_intents

    phrases: set[str] = set()
    speech_to_phrase = get_speech_to_phrase_intents(library.language) or {}
    if speech_to_phrase:
        lists = _slot_lists(speech_to_phrase, names, rooms)
        phrases |= _sampled(speech_to_phrase, DEVICE_INTENTS, lists, library.language)
    # Without rooms: a timer said with one is rare, and they would treble the sentences.
    lists = _slot_lists(library.data, (), ())
    phrases |= _sampled(library.data, OTHER_INTENTS, lists, library.language)
    return sorted(p for p in phrases if p)


def named_timer_phrases(phrases: Sequence[str], names: Iterable[str]) -> list[str]:
    """The sentences about "the timer" about each named timer instead (timer names are
    free words, left out of the sentences)."""
    named = list(names)
    return [_THE_TIMER.sub(f"the {name} timer", p, count=1)
            for p in phrases if _THE_TIMER.search(p) for name in named]  # fmt: skip


def _slot_lists(
    data: dict[str, Any], names: Sequence[str], rooms: Sequence[str]
) -> dict[str, SlotList]:
    number = {"start": int(NUMBER), "stop": int(NUMBER), "words": False}
    lists: dict[str, SlotList] = {
        # An empty list makes hassil warn once per sentence: a house with no devices or
        # rooms gets the placeholder, whose sentences are dropped.
        "name": TextSlotList.from_strings(list(names) or [_PLACEHOLDER], name="name"),
        "area": TextSlotList.from_strings(list(rooms) or [_PLACEHOLDER], name="area"),
        "floor": TextSlotList.from_strings([_PLACEHOLDER], name="floor"),
    }
    for key, spec in data.get("lists", {}).items():
        if "range" in spec:
            lists[key] = RangeSlotList(name=key, **number)
        elif spec.get("wildcard"):
            lists[key] = TextSlotList.from_strings([_PLACEHOLDER], name=key)
    return lists


def _sampled(data: dict[str, Any], intents: set[str], lists: dict[str, SlotList],
             language: str) -> set[str]:  # fmt: skip
    chosen = {k: v for k, v in data.get("intents", {}).items() if k in intents}
    if not chosen:
        return set()
    sentences = sample_intents(Intents.from_dict({**data, "intents": chosen}),
                               slot_lists=lists, language=language)  # fmt: skip
    return {words(text) for _, text in sentences if _PLACEHOLDER not in text}
