"""The fast path: common commands recognised by rule, before the language model.

"turn on the porch light", "dim the kitchen light to 40 percent", "is the fan on",
"set a timer for an hour and a half", "what time is it", "what's seventeen times twenty
three". A recognised command runs its tool at once and answers with a short sentence.

It must be right, not merely fast: a text that does not have one of these shapes goes to
the language model; a device that cannot be told apart ("the light" with three lights) is
asked about, and one that does not exist is said so. Nothing is switched on a guess.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.actions.builtin import OPERATORS
from appliance.actions.devices import (
    PLURALS,
    Ambiguous,
    Device,
    DeviceDirectory,
    Match,
    Unknown,
)
from appliance.actions.numbers import parse_duration, parse_number, tokens
from appliance.actions.tools import CallContext, ToolRegistry
from appliance.handlers import Handled

NAME = "fast_path"
PENDING_SECONDS = 60.0
"""How long a "which light?" question waits for its answer."""

_PREFIX = re.compile(
    r"^(?:(?:hey |ok |okay )?jarvis |please |can you |could you |would you |will you "
    r"|i want you to |i'd like you to |go ahead and |just )+"
)
_SUFFIX = re.compile(r"(?: please| for me| now| right now| thanks| thank you)+$")
_TIME = re.compile(
    r"^(?:what time is it|what's the time|what is the time|tell me the time"
    r"|do you know (?:what time it is|the time)|the time|time)$"
)
_DATE = re.compile(
    r"^(?:what's the date|what is the date|what's today's date|what is today's date"
    r"|tell me the date|what day is it|what day is today|what's the day|what is the day"
    r"|what's today|what is today|the date|date)(?: today)?$"
)
_ON_OFF_FIRST = re.compile(r"^(?:turn|switch|power) (on|off) (.+)$")
_ON_OFF_LAST = re.compile(r"^(?:turn|switch|power) (.+?) (on|off)$")
_PUT = re.compile(r"^put (?:(on|off) (.+)|(.+?) (on|off))$")
""""put on some music" is not for a device: only a known device makes it a command."""
_PRONOUNS = {"it", "that", "this", "them", "those", "these", "everything", "something"}
_BARE_ON_OFF = re.compile(r"^(.+?) (on|off)$")
_SHUT = re.compile(r"^(?:shut off|shut down|kill) (.+)$")
_TOGGLE = re.compile(r"^toggle (.+)$")
_BRIGHTNESS = (
    re.compile(r"^(?:set|change|make|put) (?:the )?brightness (?:of|for|on) (.+?) to (.+)$"),
    re.compile(r"^(?:set|dim|brighten|turn|put|change|bring|make) (.+?)(?: brightness)?"
               r" (?:to|at) (.+)$"),
)  # fmt: skip
_STATE = re.compile(r"^(?:is|are) (.+?) (?:on|off|turned on|turned off|switched on|lit|running)$")
_ARITH_PREFIX = re.compile(
    r"^(?:what's|what is|how much is|calculate|compute|work out|what are|what)\s*"
)
_OPS = {"plus": "plus", "add": "plus", "minus": "minus", "times": "times",
        "multiplied by": "times", "divided by": "divided by", "over": "divided by"}  # fmt: skip
_TIMER_LIST = re.compile(
    r"^(?:what|which) timers (?:are there|are running|do i have|have i got)"
    r"|^(?:list|show)(?: me)?(?: all)?(?: my| the)? timers$|^do i have any timers$"
    r"|^how many timers"
)
_TIMER_CANCEL = re.compile(
    r"^(?:cancel|stop|delete|remove|clear|end|turn off)(?: the| my)?( all(?: the| my)?)?"
    r"(?: (.+?))? timers?$"
)
_TIMER_LEFT = re.compile(
    r"^(?:how (?:long|much time|much longer)(?: is)?(?: there)? (?:left|remaining|to go)"
    r"|what's left|what is left|time left)(?: on| for)?(?: the| my)?(?: (.+?))?(?: timer)?$"
)
_LEVEL_WORDS = {"half": 50.0, "full": 100.0, "maximum": 100.0, "max": 100.0, "minimum": 1.0,
                "zero": 0.0, "off": 0.0}  # fmt: skip


@dataclass(frozen=True)
class Intent:
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    device_phrase: str | None = None
    """Said of the device; resolved against the configured devices."""
    bare: bool = False
    """A shape loose enough ("porch light on") that only a known device makes it a command."""
    refusal: str = ""
    """Understood but refused before any tool runs (e.g. brightness 300 percent)."""


@dataclass
class _Pending:
    intent: Intent
    candidates: tuple[Device, ...]
    asked_at: float


def normalise(text: str) -> list[str]:
    """Words of a transcript without politeness around the command. whisper tiny sometimes
    writes a short request two or three times over: one copy is kept."""
    sentences = {" ".join(tokens(s)) for s in re.split(r"[.!?]+", text) if tokens(s)}
    if len(sentences) == 1:
        text = sentences.pop()
    joined = " ".join(tokens(text))
    joined = _SUFFIX.sub("", _PREFIX.sub("", joined)).strip()
    return joined.split()


def parse(text: str) -> Intent | None:
    """The command a text is, if it has one of the fast path's shapes."""
    words = normalise(text)
    if not words:
        return None
    line = " ".join(words)
    intent = _parse_line(words, line)
    if intent is not None and intent.device_phrase is not None:
        said = [w for w in intent.device_phrase.split() if w not in ("the", "my", "a", "an")]
        if said and all(w in _PRONOUNS for w in said):
            return None  # "turn it off": what "it" is, the language model may know
    return intent


def _parse_line(words: list[str], line: str) -> Intent | None:
    if _TIME.match(line):
        return Intent("time_now")
    if _DATE.match(line):
        return Intent("date_today")
    return (
        _arithmetic(line)
        or _timer(words, line)
        or _brightness(line)
        or _state(line)
        or _switch(line)
    )


def _arithmetic(line: str) -> Intent | None:
    body = _ARITH_PREFIX.sub("", line)
    body = re.sub(r" (?:equals?|makes?)$", "", body)
    for spoken, op in sorted(_OPS.items(), key=lambda item: -len(item[0])):
        left, sep, right = body.partition(f" {spoken} ")
        if not sep:
            continue
        a, b = _whole_number(left), _whole_number(right)
        if a is not None and b is not None:
            assert op in OPERATORS
            return Intent("calculate", {"a": a, "operator": op, "b": b})
        return None
    return None


def _whole_number(text: str) -> float | None:
    words = text.split()
    negative = bool(words) and words[0] in ("minus", "negative")
    if negative:
        words = words[1:]
    parsed = parse_number(words, 0)
    if parsed is None or parsed[1] != len(words):
        return None
    return -parsed[0] if negative else parsed[0]


def _timer(words: list[str], line: str) -> Intent | None:
    if line in ("how much time is left", "how long is left", "how much longer"):
        return Intent("timer_remaining", {"name": ""})
    if "timer" not in line and "timers" not in line and not line.startswith("remind me in"):
        return None
    if _TIMER_LIST.match(line):
        return Intent("timer_list")
    if left := _TIMER_LEFT.match(line):
        return Intent("timer_remaining", {"name": _timer_name(left.group(1) or "")})
    if cancel := _TIMER_CANCEL.match(line):
        arguments: dict[str, Any] = {"name": _timer_name(cancel.group(2) or "")}
        if cancel.group(1) or line.endswith("timers"):
            arguments["all"] = True
        return Intent("timer_cancel", arguments)
    starts = ("set", "start", "make", "create", "put on", "timer for", "a timer", "an",
              "remind me in", "countdown")  # fmt: skip
    if not line.startswith(starts) and not re.match(r"^(?:a |an )?\S+(?: \S+)*? timer$", line):
        return None
    for i in range(len(words)):
        found = parse_duration(words, i)
        if found is None:
            continue
        seconds, end = found
        return Intent("timer_set", {"seconds": seconds, "name": set_timer_name(words)})
    return None


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


def _timer_name(text: str) -> str:
    words = [w for w in text.split() if w not in ("the", "my", "a", "timer", "timers")]
    return " ".join(words)


def _brightness(line: str) -> Intent | None:
    for pattern in _BRIGHTNESS:
        match = pattern.match(line)
        if not match:
            continue
        phrase, level_text = match.group(1), match.group(2)
        level_words = level_text.replace("percent", "").replace("per cent", "").split()
        if level_words[-1:] == ["brightness"]:
            level_words = level_words[:-1]
        if len(level_words) == 1 and level_words[0] in _LEVEL_WORDS:
            level: float | None = _LEVEL_WORDS[level_words[0]]
        else:
            level = _whole_number(" ".join(level_words))
        if level is None:
            return None
        phrase = re.sub(r"(?: brightness|'s brightness)$", "", phrase)
        if not 0 <= level <= 100:
            return Intent(
                "device_brightness",
                {"percent": level},
                device_phrase=phrase,
                refusal="Brightness goes from 0 to 100 percent, so I left {device} as it was.",
            )
        return Intent("device_brightness", {"percent": level}, device_phrase=phrase)
    return None


def _state(line: str) -> Intent | None:
    match = _STATE.match(line)
    return Intent("device_state", device_phrase=match.group(1)) if match else None


def _switch(line: str) -> Intent | None:
    if match := _ON_OFF_FIRST.match(line):
        return Intent(f"device_{match.group(1)}", device_phrase=match.group(2))
    if match := _ON_OFF_LAST.match(line):
        return Intent(f"device_{match.group(2)}", device_phrase=match.group(1))
    if match := _SHUT.match(line):
        return Intent("device_off", device_phrase=match.group(1))
    if match := _TOGGLE.match(line):
        return Intent("device_toggle", device_phrase=match.group(1))
    if match := _PUT.match(line):
        state, phrase = match.group(1) or match.group(4), match.group(2) or match.group(3)
        return Intent(f"device_{state}", device_phrase=phrase, bare=True)
    if match := _BARE_ON_OFF.match(line):
        return Intent(f"device_{match.group(2)}", device_phrase=match.group(1), bare=True)
    return None


class FastPath:
    """A `TextHandler`: runs the command a text is, or returns None for the next handler."""

    def __init__(
        self,
        registry: ToolRegistry,
        devices: DeviceDirectory,
        *,
        origin: str = "voice",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.devices = devices
        self.origin = origin
        self.clock = clock
        self._pending: _Pending | None = None

    async def handle(self, text: str, turn: int) -> Handled | None:
        context = CallContext("fast", turn, text, self.origin)
        intent = parse(text)
        pending, self._pending = self._pending, None
        if intent is None:
            if pending is not None and self.clock() - pending.asked_at < PENDING_SECONDS:
                return await self._answer_which(pending, text, context)
            return None
        if self.registry.get(intent.tool) is None and intent.device_phrase is None:
            return None  # e.g. timers not set up: let the language model answer
        if intent.device_phrase is None:
            outcome = await self.registry.call(intent.tool, intent.arguments, context)
            return Handled(outcome.message, NAME, intent.tool)
        return await self._device_command(intent, context)

    async def _device_command(self, intent: Intent, context: CallContext) -> Handled | None:
        assert intent.device_phrase is not None
        phrase = intent.device_phrase
        group = self._group(phrase)
        if group is not None and intent.tool in ("device_on", "device_off"):
            return await self._run_group(intent, group, context)
        found = self.devices.resolve(phrase)
        if isinstance(found, Unknown):
            if intent.bare:
                return None  # "carry on" is not a command for a device called "carry"
            if not len(self.devices):
                message = "I don't have any devices set up."
            elif not _spoken_phrase(phrase).strip("the "):
                message = "I didn't catch which device."
            else:
                message = f"I don't know a device called {_spoken_phrase(phrase)}."
            arguments = {**intent.arguments, "device": _spoken_phrase(phrase)}
            self.registry.refuse(intent.tool, arguments, message, context)
            return Handled(message, NAME, intent.tool)
        if isinstance(found, Ambiguous):
            self._pending = _Pending(intent, found.candidates, self.clock())
            question = found.question()
            arguments = {**intent.arguments, "device": _spoken_phrase(phrase)}
            self.registry.refuse(intent.tool, arguments, question, context)
            return Handled(question, NAME, intent.tool, follow_up=True)
        return await self._run(intent, found.device, context)

    async def _run(self, intent: Intent, device: Device, context: CallContext) -> Handled:
        arguments = {**intent.arguments, "device": device.name}
        if intent.refusal:
            message = intent.refusal.format(device=f"the {device.name}")
            self.registry.refuse(intent.tool, arguments, message, context)
            return Handled(message, NAME, intent.tool)
        outcome = await self.registry.call(intent.tool, arguments, context)
        return Handled(outcome.message, NAME, intent.tool)

    async def _answer_which(
        self, pending: _Pending, text: str, context: CallContext
    ) -> Handled | None:
        chosen = self.devices.pick(text, pending.candidates)
        if chosen is None:
            return None
        return await self._run(pending.intent, chosen, context)

    def _group(self, phrase: str) -> list[Device] | None:
        """ "all the lights", "the kitchen lights": every device of a kind (in a room)."""
        words = phrase.split()
        if "all" not in words and not any(w in PLURALS for w in words):
            return None
        found = self.devices.resolve(" ".join(w for w in words if w != "all"))
        if isinstance(found, Ambiguous):
            return list(found.candidates)
        if isinstance(found, Match) and "all" in words:
            return [found.device]
        return None

    async def _run_group(
        self, intent: Intent, group: list[Device], context: CallContext
    ) -> Handled:
        failures = []
        for device in group:
            outcome = await self.registry.call(intent.tool, {"device": device.name}, context)
            if not outcome.ok:
                failures.append(outcome.message)
        state = "on" if intent.tool == "device_on" else "off"
        message = f"Turned {state} {len(group)} {group[0].config.kind}s."
        if failures:
            message = " ".join(failures)
        return Handled(message, NAME, intent.tool)


def _spoken_phrase(phrase: str) -> str:
    words = phrase.split()
    while words and words[0] in ("the", "my", "a", "an"):
        words = words[1:]
    return " ".join(words)
