"""Words of a request as the language model's tool calls are checked against them: the
request without politeness around it, and the name a timer is given by what was said."""

from __future__ import annotations

import re

from appliance.actions.numbers import parse_duration, parse_number, tokens

_PREFIX = re.compile(
    r"^(?:(?:hey |ok |okay )?jarvis |please |can you |could you |would you |will you "
    r"|i want you to |i'd like you to |go ahead and |just )+"
)
_SUFFIX = re.compile(r"(?: please| for me| now| right now| thanks| thank you)+$")


def normalise(text: str) -> list[str]:
    """Words of a transcript without politeness around the command. whisper tiny sometimes
    writes a short request two or three times over: one copy is kept."""
    sentences = {" ".join(tokens(s)) for s in re.split(r"[.!?]+", text) if tokens(s)}
    if len(sentences) == 1:
        text = sentences.pop()
    joined = " ".join(tokens(text))
    joined = _SUFFIX.sub("", _PREFIX.sub("", joined)).strip()
    return joined.split()


_TIMER_WORDS = ("timer", "countdown", "alarm", "reminder")
_NAME_NOISE = {"set", "start", "make", "create", "put", "on", "a", "an", "the", "my", "timer",
               "for", "remind", "me", "in", "countdown", "of", "called", "named", "minute",
               "minutes", "second", "seconds", "hour", "hours", "give", "get", "need", "want",
               "i", "you", "us", "new", "up", "quick", "alarm", "reminder", "please", "and",
               "with", "to", "that", "this", "some", "one"}  # fmt: skip


def set_timer_name(words: list[str]) -> str:
    """The name a request to set a timer gives it, from the words said (the fast path and
    the language model's calls both use this): "set a pasta timer for …" → pasta, "give me
    a pasta countdown of ten minutes" → pasta, "… called eggs" → eggs, "a ten minute timer
    for the roast" → roast; else "". The length is taken out first."""
    rest = list(words)
    for i in range(len(rest)):
        found = parse_duration(rest, i)
        if found is not None:
            rest = rest[:i] + rest[found[1] :]
            break
    if "called" in rest or "named" in rest:
        index = max(i for i, w in enumerate(rest) if w in ("called", "named"))
        return " ".join(w for w in rest[index + 1 :] if w not in ("the", "a"))
    keyword = next((i for i, w in enumerate(rest) if w in _TIMER_WORDS), None)
    if keyword is None:
        return ""
    before: list[str] = []
    for word in reversed(rest[:keyword]):  # the words right before "timer"
        if word in _NAME_NOISE or parse_number([word], 0) is not None:
            break
        before.insert(0, word)
    if before:
        return " ".join(before)
    for i in range(keyword + 1, len(rest)):  # "… timer for the roast"
        if rest[i] != "for":
            continue
        after = [w for w in rest[i + 1 :] if w not in ("the", "my", "a", "an")]
        name = []
        for word in after:
            if word in _NAME_NOISE or parse_number([word], 0) is not None:
                break
            name.append(word)
        if name:
            return " ".join(name)
    return ""
