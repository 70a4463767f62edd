"""Answers to the appliance's own questions ("Did you mean the porch light?", "For how
long?"), read from the words said back: yes, no, a no that names something else, a
command cut short dropped. And the question itself for a middling match."""

from __future__ import annotations

import re
from dataclasses import replace

from appliance.understanding.intents import Call
from appliance.understanding.recognition import Recognition

_YES = re.compile(
    r"^(?:yes|yeah|yep|yup|sure|ok|okay|correct|right|please|please do|do it|go ahead|"
    r"that's right|that is right|exactly|affirmative|yes please|of course|mm hmm|mhm|"
    r"uh huh|go for it|absolutely|definitely|do that)\b"
)
_DECLINED = re.compile(
    r"(?:no|nope|nah|no thanks|no thank you|never mind|nevermind|cancel|"
    r"cancel that|forget it|forget about it|stop|nothing|none)"
)
"""A whole answer that drops a command cut short (not "cancel the pasta timer")."""
_NO = re.compile(
    r"^(?:no|nope|nah|don't|do not|cancel|never mind|nevermind|stop|wrong|not (?:that|this)"
    r"(?: one)?)\b"
)
_FILLERS = re.compile(r"^(?:(?:uh|um|er|erm|oh|ah|well|hmm|so)\s+)+")
"""Said before an answer ("uh, yes"): not the answer."""
_NOT_THE_NAME = {"a", "an", "the", "my", "timer", "called", "named", "it's", "its", "it", "is",
                 "i", "said", "meant", "mean", "one"}  # fmt: skip
_ABOUT_A_DEVICE = {"HassTurnOn", "HassTurnOff", "HassToggle", "HassLightSet", "HassGetState"}


def answer_words(text: str) -> str:
    """The answer as plain lower-case words, without what is said before one ("uh")."""
    return _FILLERS.sub("", " ".join(re.findall(r"[a-z']+", text.lower())))


def is_yes(words: str) -> bool:
    return bool(_YES.match(words))


def is_no(words: str) -> bool:
    return bool(_NO.match(words))


def drops_it(words: str) -> bool:
    """The whole answer drops a command cut short ("no", "never mind")."""
    return bool(_DECLINED.fullmatch(words))


def after_no(words: str) -> str:
    """What follows the "no" ("no, the bed light": "the bed light")."""
    return _NO.sub("", words, count=1).strip()


def timer_named_instead(calls: tuple[Call, ...], words: str) -> tuple[Call, ...] | None:
    """The timer asked about, with the name a "no" gives it instead ("no, an egg timer")."""
    if not calls or any(c.tool != "timer_set" for c in calls):
        return None
    name = " ".join(w for w in after_no(words).split() if w not in _NOT_THE_NAME)
    if not name:
        return None
    return tuple(replace(c, arguments={**c.arguments, "name": name}) for c in calls)


def did_you_mean(found: Recognition) -> str:
    """The question for a middling match."""
    names = [taken for _, taken in found.corrected]
    if found.corrected == ((found.text, found.text),):  # nothing corrected, only unsure
        verb = {"HassTurnOn": "turn on", "HassTurnOff": "turn off"}.get(found.intent)
        device = found.slots.get("name")
        if verb and device:
            return f"Do you want me to {verb} the {device}?"
    device = found.slots.get("name")
    if device and len(names) == 1 and found.intent in _ABOUT_A_DEVICE:
        return f"Did you mean the {device}?"
    return f"Did you mean: {found.text}?"
