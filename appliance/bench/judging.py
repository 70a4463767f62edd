"""Judging a turn of `appliance bench --only understanding` by what ran (right, wrong,
confirm or missed; see bench/understanding.py), the reply's false claims and honest
refusals, and the command word error rate."""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Sequence
from typing import Any

from appliance import events as ev
from appliance.actions.numbers import number_words
from appliance.bench.testset import Call, Item
from appliance.sections.devices import normalise_name

READ_ONLY = frozenset(
    {"device_state", "timer_list", "timer_remaining", "time_now", "date_today", "calculate",
     "list_read"}
)  # fmt: skip
"""Tools that only tell: a wrong one of these said something beside the point, it did
not change the house."""
_REFUSING = re.compile(
    r"\b(?:can't|cannot|don't|didn't|won't|couldn't|isn't|wasn't|not|no|unable|sorry|"
    r"without)\b",
    re.I,
)


# ---- word error rate -------------------------------------------------------------------


def words_of(text: str) -> list[str]:
    """Lower-case words with numbers as words ("80%" → eighty percent, "3" → three) and
    "and" inside a number dropped, so "105" and "one hundred and five" are alike."""
    text = text.lower().replace("’", "'").replace("%", " percent")
    text = re.sub(r"(\d),(\d)", r"\1\2", text)
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m.group()))} ", text)
    words = re.findall(r"[a-z']+", text.replace("-", " "))
    words = [w.strip("'") for w in words if w.strip("'")]
    return [w for i, w in enumerate(words) if not (w == "and" and i and words[i - 1] == "hundred")]


def doubled(heard: str) -> bool:
    """Whisper wrote the request twice over ("What time is it? What time is it?")."""
    words = words_of(heard)
    half = len(words) // 2
    return half > 0 and len(words) % 2 == 0 and words[:half] == words[half:]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words)."""
    from rapidfuzz.distance import Levenshtein

    ref, hyp = words_of(reference), words_of(hypothesis)
    return Levenshtein.distance(ref, hyp), len(ref)


# ---- judging a turn --------------------------------------------------------------------


@dataclasses.dataclass
class Turn:
    actions: list[ev.Action] = dataclasses.field(default_factory=list)
    intents: list[ev.IntentRecognized] = dataclasses.field(default_factory=list)
    handled: ev.Handled | None = None

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Action):
            self.actions.append(event)
        elif isinstance(event, ev.IntentRecognized):
            self.intents.append(event)
        elif isinstance(event, ev.Handled):
            self.handled = event

    @property
    def done(self) -> list[ev.Action]:
        return [a for a in self.actions if a.ok]

    @property
    def confirmed(self) -> bool:
        return any(i.path == "confirm" for i in self.intents)


def matches(expected: Call, action: ev.Action) -> bool:
    """The action is the expected call: its tool, and the arguments the call names."""
    if action.tool not in expected.tools or not action.ok:
        return False
    for key, want in expected.arguments.items():
        got = action.arguments.get(key)
        if isinstance(want, bool):
            if bool(got) != want:
                return False
        elif isinstance(want, int | float):
            if not isinstance(got, int | float) or abs(got - want) > 0.5:
                return False
        elif _singular(normalise_name(str(got or ""))) != _singular(normalise_name(want)):
            return False
    return True


def _singular(name: str) -> str:
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") else w for w in name.split())


def verdict(item: Item, turn: Turn) -> str:
    """right, wrong, confirm or missed (see bench/understanding.py)."""
    done = turn.done
    if unexpected(item, turn):
        return "wrong"
    if item.expect and all(any(matches(c, a) for a in done) for c in item.expect):
        return "right"
    if turn.confirmed:
        return "confirm"
    return "missed" if item.expect else "right"


def unexpected(item: Item, turn: Turn) -> list[ev.Action]:
    """Actions that succeeded and were neither expected nor allowed."""
    return [
        a for a in turn.done
        if a.tool not in item.allowed and not any(matches(c, a) for c in item.expect)
    ]  # fmt: skip


def claims_module() -> Any:
    try:
        return importlib.import_module("appliance.understanding.claims")
    except ImportError:
        return None


def followup_module() -> Any:
    try:
        return importlib.import_module("appliance.understanding.followup")
    except ImportError:
        return None


def false_claim(sentences: Sequence[str], turn: Turn, claims: Any) -> str:
    """The first sentence claiming an action when none succeeded this turn ("" if none)."""
    if claims is None or turn.done:
        return ""
    for sentence in sentences:
        if claims.find_claim(sentence) is not None:
            return sentence
    return ""


def refused(reply: str, turn: Turn) -> bool:
    """An honest "no": nothing ran, and a call was refused, or the handler answered with
    what it cannot do, or the reply says so."""
    if turn.done or not reply.strip():
        return False
    return (
        any(not a.ok for a in turn.actions)
        or turn.handled is not None
        or bool(_REFUSING.search(reply))
    )
