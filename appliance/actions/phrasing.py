"""The spoken answer after a tool call by the language model: the model phrases the tool's
result, and its sentence is used only if it keeps the result's facts.

SmolLM2-135M is shown the request and the tool's own sentence (the template, e.g. "The
porch light is on.") with three worked examples, and writes one short sentence, capped at
`MAX_TOKENS`. `check` then compares it with the result: the device's name and its new
state ("on"/"off", "at 30 percent"), the timer's length and name, every number; nothing
contradicting (the other state, another device, a number or length not in the result, an
apology or a "not"). A sentence that fails any of these is dropped and the template is
spoken instead; which one was used, and why, is logged.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.actions.numbers import every_value, parse_duration, parse_number, tokens
from appliance.llm.base import LanguageModel, Message

MAX_TOKENS = 32
"""The phrasing is one short sentence: at most this many tokens are generated."""
MAX_WORDS = 24

_SYSTEM = (
    "You are Jarvis, a voice assistant. Tell the user the result in one short sentence. "
    "Keep every name and number."
)
_EXAMPLES = (
    (
        "please turn on the garden pump",
        "The garden pump is on.",
        "Done, the garden pump is now on.",
    ),
    (
        "I need a two hour countdown",
        "OK, two hours, starting now.",
        "Your two hour timer is running.",
    ),
    (
        "set the desk lamp to 70 percent",
        "The desk lamp is at 70 percent.",
        "I set the desk lamp to 70 percent.",
    ),
)
_FAILURE = {
    "not", "no", "never", "sorry", "unable", "cannot", "can't", "couldn't", "won't", "don't",
    "didn't", "isn't", "wasn't", "error", "failed", "fail", "apologize", "apologise",
    "unfortunately", "however", "but",
}  # fmt: skip
_CANCELLED = {"cancelled", "canceled", "cancel", "stopped", "removed", "deleted", "cleared"}
_LEFT = {"left", "remaining", "remain", "remains"}
_NOT_NAMES = {"the", "a", "an", "my", "your", "minute", "second", "hour", "and", "one"}
_DEVICE_WORDS = ("light", "lights", "lamp", "lamps", "fan", "fans", "switch", "plug", "socket",
                 "heater", "relay", "pump")  # fmt: skip
_STATE = re.compile(r"\bis (on|off)\b")


@dataclass(frozen=True)
class Facts:
    """What a phrasing of one tool result must say, and what it must not."""

    result: str
    """The tool's own sentence (the template)."""
    phrases: tuple[tuple[str, ...], ...] = ()
    """Word sequences that must appear: the device's name, a timer's name, "on"."""
    durations: tuple[float, ...] = ()
    """Every length the result says (seconds); the phrasing must say each, and no other."""
    numbers: frozenset[float] = frozenset()
    """The only numbers the phrasing may contain."""
    percent: float | None = None
    """A brightness level: must be said as "at/to N percent"."""
    forbidden: tuple[tuple[str, ...], ...] = ()
    """Word sequences that contradict the result: the other state, other devices."""
    one_of: frozenset[str] = frozenset()
    """At least one of these words must appear ("cancelled", "left"), when not empty."""


@dataclass(frozen=True)
class Phrasing:
    text: str
    """What is spoken."""
    by_model: bool
    """True: the model's sentence passed the check; False: the template."""
    reason: str = ""
    """Why the model's sentence was not used ("" when it was)."""
    model_text: str = ""
    """What the model wrote, used or not."""


def facts_of(
    tool: str, arguments: dict[str, object], result: str, device_names: Sequence[str] = ()
) -> Facts:
    """The facts of a successful call's result, from its tool, arguments and sentence."""
    words = tokens(result)
    phrases: list[tuple[str, ...]] = []
    forbidden: list[tuple[str, ...]] = []
    device = arguments.get("device")
    if isinstance(device, str) and device:
        phrases.append(tuple(tokens(device)))
    forbidden += [tuple(tokens(n)) for n in device_names if n != device]
    # A kind of device the result does not speak of ("I set the desk lamp to 2 minutes"
    # for a timer) is a device that was not touched.
    forbidden += [(kind,) for kind in _DEVICE_WORDS if kind not in words]
    if state := _STATE.search(result.lower()):
        said = state.group(1)
        phrases.append((said,))
        forbidden.append(("off",) if said == "on" else ("on",))
    name = arguments.get("name")
    if isinstance(name, str) and name.strip() and tool == "timer_set":
        phrases.append(tuple(tokens(name)))
    if tool != "timer_set":
        phrases += [(w,) for w in _timer_names(words)]
    if tool.startswith("timer_") and tool != "timer_set":
        forbidden += [("set",), ("started",), ("starting",)]  # no new timer was set
    percent = None
    if tool == "device_brightness" and isinstance(arguments.get("percent"), int | float):
        percent = float(arguments["percent"])  # type: ignore[arg-type]
    one_of = {"timer_cancel": _CANCELLED, "timer_remaining": _LEFT}.get(tool, set())
    return Facts(
        result=result,
        phrases=tuple(p for p in phrases if p),
        durations=tuple(every_value(words, parse_duration)),
        numbers=frozenset(every_value(words, parse_number)),
        percent=percent,
        forbidden=tuple(p for p in forbidden if p),
        one_of=frozenset(one_of),
    )


def check(sentence: str, facts: Facts) -> str:
    """Why `sentence` may not be spoken for `facts`, or "" when it keeps them."""
    text = sentence.strip()
    if not text:
        return "empty"
    if "\n" in text or re.search(r"[{}\[\]<>`*#|\\]", text):
        return "not plain speech"
    if not text.endswith((".", "!")):
        return "not one finished sentence"
    if re.search(r"[.!?](?=\s|$)", text[:-1]) or "?" in text:
        return "more than one sentence, or a question"
    words = tokens(text)
    if not 2 <= len(words) <= MAX_WORDS:
        return f"{len(words)} words"
    failure = (set(words) & _FAILURE) - set(tokens(facts.result))
    if failure:
        return f"says {sorted(failure)[0]!r}, the result does not"
    for phrase in facts.phrases:
        if not _contains(words, phrase):
            return f"leaves out {' '.join(phrase)!r}"
    for phrase in facts.forbidden:
        if _contains(words, phrase):
            return f"says {' '.join(phrase)!r}, which contradicts the result"
    if facts.one_of and not set(words) & facts.one_of:
        return f"says none of {sorted(facts.one_of)}"
    durations = every_value(words, parse_duration)
    for length in facts.durations:
        if length not in durations:
            return f"leaves out the length ({length:g} s)"
    extra = [d for d in durations if d not in facts.durations]
    if extra:
        return f"says a length the result does not ({extra[0]:g} s)"
    numbers = every_value(words, parse_number)
    wrong = [n for n in numbers if n not in facts.numbers]
    if wrong:
        return f"says {wrong[0]:g}, which is not in the result"
    if facts.percent is not None and not _says_percent(words, facts.percent):
        return f"does not say at {facts.percent:g} percent"
    return ""


def messages(request: str, result: str) -> list[Message]:
    """The prompt: the request and the result, after three worked examples."""
    prompt = [Message("system", _SYSTEM)]
    for asked, done, said in _EXAMPLES:
        prompt.append(Message("user", f"Request: {asked}\nResult: {done}"))
        prompt.append(Message("assistant", said))
    return [*prompt, Message("user", f"Request: {request}\nResult: {result}")]


def first_sentence(llm: LanguageModel, prompt: list[Message]) -> str:
    """The model's reply up to its first sentence end, at most MAX_TOKENS pieces (one
    piece is one token with llama.cpp). Blocking: run it on the language model's thread."""
    cancel = threading.Event()
    pieces: list[str] = []
    stream = llm.stream(prompt, cancel)
    try:
        for piece in stream:
            pieces.append(piece)
            text = "".join(pieces).rstrip()
            if len(pieces) >= MAX_TOKENS or re.search(r"[.!?]$", text):
                break
    finally:
        cancel.set()
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    return "".join(pieces).strip()


def _timer_names(words: list[str]) -> list[str]:
    """The names of the timers a result speaks of: "the pasta timer" → pasta."""
    names = []
    for i, word in enumerate(words):
        if word in ("timer", "timers") and i > 0:
            before = words[i - 1]
            if before not in _NOT_NAMES and parse_number([before], 0) is None:
                names.append(before)
    return names


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(words[i : i + n]) == phrase for i in range(len(words) - n + 1))


def _says_percent(words: list[str], percent: float) -> bool:
    for i in range(len(words) - 2):
        number = parse_number(words, i + 1)
        if (
            words[i] in ("at", "to")
            and number is not None
            and number[0] == percent
            and words[number[1] : number[1] + 1] == ["percent"]
        ):
            return True
    return False
