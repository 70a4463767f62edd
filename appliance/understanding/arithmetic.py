"""Sums said aloud ("what's seventeen times twenty three"): our own, because a small
language model cannot do arithmetic and the sentence library has no intent for it."""

from __future__ import annotations

import re
from typing import Any

from appliance.actions.builtin import OPERATORS
from appliance.actions.numbers import number_words, parse_number, tokens

_PREFIX = re.compile(r"^(?:what's|what is|whats|how much is|calculate|compute|work out|what)\s*")
_ENDING = re.compile(r" (?:equals?|makes?|is)$")
_OPS = {"plus": "plus", "add": "plus", "minus": "minus", "times": "times",
        "multiplied by": "times", "divided by": "divided by", "over": "divided by"}  # fmt: skip


def parse(text: str) -> dict[str, Any] | None:
    """The arguments of the `calculate` tool for a spoken sum, or None."""
    body = _PREFIX.sub("", " ".join(tokens(text)))
    body = _ENDING.sub("", body)
    for spoken, op in sorted(_OPS.items(), key=lambda item: -len(item[0])):
        left, sep, right = body.partition(f" {spoken} ")
        if not sep:
            continue
        a, b = _left_number(left), _whole_number(right)
        if a is None or b is None:
            return None
        assert op in OPERATORS
        return {"a": a, "operator": op, "b": b}
    return None


def _left_number(text: str) -> float | None:
    """The first number, after at most two words whisper put before it ("what *if* 17
    times 23": the "is" misheard)."""
    words = text.split()
    for skip in range(min(2, len(words) - 1) + 1):
        if skip and any(w[:1].isdigit() or parse_number([w], 0) for w in words[:skip]):
            break
        found = _whole_number(" ".join(words[skip:]))
        if found is not None:
            return found
    return None


def _whole_number(text: str) -> float | None:
    """A number said whole: words, digits, or whisper's mix of both ("100 and 5",
    "1 hundred and five")."""
    found = _number(text)
    if found is None and re.search(r"\d", text):
        spelled = re.sub(r"\d+", lambda m: number_words(int(m.group())), text)
        if not re.search(r"(?<!hundred)(?<!thousand) and\b", spelled):  # "2 and 3" is not 5
            found = _number(spelled)
    return found


def _number(text: str) -> float | None:
    words = text.split()
    negative = bool(words) and words[0] in ("minus", "negative")
    if negative:
        words = words[1:]
    parsed = parse_number(words, 0)
    if parsed is None or parsed[1] != len(words):
        return None
    return -parsed[0] if negative else parsed[0]
