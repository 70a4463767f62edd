"""What a recognised command is, and the word work the recognizer does on transcripts
and names: the closest of the house's names to a misheard one, a transcript cleaned of
whisper's punctuation, its numbers taken out, the library's vocabulary, and a hassil
result made a `Recognition`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hassil import RecognizeResult
from hassil.recognize import MISSING_ENTITY
from rapidfuzz import fuzz, process

from appliance.actions.numbers import parse_number, tokens
from appliance.sections.devices import DeviceConfig, normalise_name
from appliance.understanding.phrases import NUMBER as _NUMBER
from appliance.understanding.phrases import words as _words

NAME_MIN_SCORE = 0.6
"""Below this a misheard name is not taken for any of the house's names."""
UNKNOWN_NAME = "unknown_name"
"""Metadata of a command for a device the house does not have ("the garage light")."""

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
class Attempt:
    text: str
    score: float
    corrected: list[tuple[str, str]]


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
    spoken = content_words(heard)
    if not spoken or not choices:
        return None
    contents = choices if isinstance(choices, dict) else {c: content_words(c) for c in choices}
    # rapidfuzz ranks every choice in C++; only the few best are scored word by word.
    least = max(min_score, NAME_MIN_SCORE)
    near = process.extract(spoken, contents, scorer=fuzz.ratio, limit=_NEAREST,
                           score_cutoff=least * 100 * 0.8)  # fmt: skip
    scored = [
        (_name_score(spoken, name, KIND_WORDS if kinds is None else kinds), choice)
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


FILLER = {"the", "my", "a", "an", "our", "this", "that"}
_OWN_WORDS_MIN = 0.4
_NEAREST = 8
COMMAND_NOUNS = {"timer", "timers", "list", "minute", "minutes", "hour", "hours", "seconds",
                  "percent", "brightness"}  # fmt: skip
KIND_WORDS = {"light", "lights", "lamp", "lamps", "fan", "fans", "switch", "plug", "socket",
               "heater", "relay"}  # fmt: skip


def content_words(phrase: str) -> str:
    return " ".join(w for w in normalise_name(phrase).split() if w not in FILLER)


def clean(text: str) -> str:
    """Lower case, whisper's punctuation gone, a request said twice over kept once
    ("Cancel timer. Cancel timer.")."""
    sentences = [s.strip() for s in re.split(r"[.!?]+", text) if s.strip()]
    unique = list(dict.fromkeys(_words(s) for s in sentences))
    joined = " ".join(u for u in unique if u)
    return joined


PRONOUNS = {"it", "that", "this", "them", "those", "these", "everything", "something",
             "anything", "i", "you", "he", "she", "we", "they"}  # fmt: skip
NOT_IN_A_NAME = {"on", "off", "is", "are", "was", "were", "isn't", "aren't"}
"""Words an open {name} swallowed from the sentence around it: no device's name."""
DEVICE_INTENTS = {"HassTurnOn", "HassTurnOff", "HassToggle", "HassLightSet"}
"""Commands whose {name} is a device. Not questions ("what is {name}" is most questions)."""
_YES_NO_QUESTION = {"is", "are", "was", "were", "does", "do", "did", "has", "have", "isn't",
                    "aren't", "why", "who", "when", "where", "what", "which", "how",
                    "should", "shall"}  # fmt: skip
"""First words of a question that asks, not tells ("are the lights on", "why is the
kitchen light on"): never a command that changes a device ("can you turn on…" and
"could you…" are requests)."""
LATER = re.compile(r"\b(?:tomorrow|tonight|later|at (?:\d|noon|midnight|one|two|three|four|"
                    r"five|six|seven|eight|nine|ten|eleven|twelve)|in (?:a|an|half an|\d+|"
                    r"one|two|three|four|five|ten|fifteen|twenty|thirty|a few|a couple of) "
                    r"(?:minutes?|hours?|seconds?)|in a (?:while|bit)|in the (?:morning|"
                    r"afternoon|evening)|every (?:day|night|morning|afternoon|evening|hour|"
                    r"week|weekday|monday|tuesday|wednesday|thursday|friday|saturday|"
                    r"sunday))\b")  # fmt: skip
"""A later time a request is put at: nothing here does things later."""


def before_a_later_time(text: str) -> str | None:
    """The request before a later time it is put at ("turn off the bed light" of "…
    at 7"); None when it names none."""
    found = LATER.search(text)
    if found is None or found.start() == 0:
        return None
    return text[: found.start()].strip() or None


def fits(found: Recognition | None, said: str) -> bool:
    """`found` is there and can be what `said` means."""
    if found is None:
        return False
    words = said.split()
    first = words[0] if words else ""
    if found.intent in DEVICE_INTENTS and first in _YES_NO_QUESTION:
        return False
    # "the kitchen one" answers "which one?": not the kitchen light at 1 percent.
    return not (found.intent == "HassLightSet" and words[-1:] == ["one"])


def unknown_device(result: RecognizeResult, attempt: Attempt) -> Recognition | None:
    """ "turn on the garage light" where there is none: a command for a device the house
    does not have (said so, rather than left to the language model). Only a short name
    counts: a long one is a sentence the library's {name} swallowed."""
    opened = {
        slot: entity.text.strip()
        for slot, entity in result.unmatched_entities.items()
        if getattr(entity, "text", MISSING_ENTITY) != MISSING_ENTITY
    }
    heard = content_words(opened.get("name", ""))
    if result.intent.name not in DEVICE_INTENTS or set(opened) != {"name"}:
        return None
    if attempt.corrected:  # a guessed word and an unknown name: not sure it is a command
        return None
    if not heard or len(heard.split()) > 3 or set(heard.split()) & PRONOUNS:
        return None  # "turn it off": what "it" is, the language model may know
    if set(heard.split()) & NOT_IN_A_NAME:
        return None  # "turn that off" read as a device called "off"; "the fan is off"
    slots = {name: entity.value for name, entity in result.entities.items()}
    slots["name"] = heard
    return Recognition(result.intent.name, slots, attempt.score, "library", attempt.text,
                       metadata={UNKNOWN_NAME: True})  # fmt: skip


def numbers_out(text: str) -> tuple[str, list[str]]:
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


def sentences_in(text: str) -> list[str]:
    parts = [_words(s) for s in re.split(r"[.!?]+", text)]
    return sorted({p for p in parts if p}, key=lambda p: -len(p))


def replace_words(text: str, old: str, new: str) -> str:
    pattern = re.compile(rf"\b{re.escape(old.lower())}\b")
    return pattern.sub(new, text, count=1)


def spoken_names_of(devices: Sequence[DeviceConfig]) -> dict[str, tuple[str, str]]:
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
            if len(words) > 1 and words[-1] in KIND_WORDS:
                implied.setdefault(" ".join(words[:-1]), set()).add(device.name)
        if device.room:
            for kind in {device.kind, *(w for w in KIND_WORDS if w == device.kind)}:
                implied.setdefault(f"{normalise_name(device.room)} {kind}", set()).add(device.name)
    for spoken, owners in implied.items():
        if len(owners) == 1 and spoken not in names:
            owner = owners.pop()
            names[spoken] = (owner, kinds[owner])
    return names


def vocabulary_of(
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


def recognition_of(
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
