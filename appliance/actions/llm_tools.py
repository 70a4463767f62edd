"""Tool calls by the language model, for device and timer requests the fast path did not
recognise ("I need the porch light", "could you give me a ten minute countdown").

The model's output is held by llama.cpp's JSON-schema grammar to
`{"tool": <a real tool>, "arguments": {...}}` or `{"tool": "none"}`, so it always parses
and names a real tool. That makes calls parse, not right: a 135M model picks a wrong
tool or device for many plain requests. So before anything runs, the call is checked
against what was said: the device must be named in the transcript, the verb must fit
("on" for device_on), a timer's length and a brightness level are taken from the words,
not from the model. A call that fails the check is dropped and the request gets an
ordinary spoken answer; an unknown tool or invalid arguments get "I couldn't do that".
A timer's name is taken from the words too ("a pasta countdown of ten minutes" → pasta),
by the fast path's own rule.

The result is then fed back and the model phrases the spoken answer in one short
sentence (`phrasing.py`). Its sentence is spoken only if it keeps the result's facts (the
device and its new state, the timer's length and name, every number) and says nothing
against them; otherwise the tool's own sentence (the template) is. A failed call always
speaks the template: it says exactly what went wrong.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from appliance import events as ev
from appliance.actions import phrasing
from appliance.actions.devices import DeviceDirectory
from appliance.actions.numbers import every_value, parse_duration, parse_number, tokens
from appliance.actions.phrasing import Phrasing
from appliance.actions.tools import CallContext, Outcome, Tool, ToolRegistry
from appliance.actions.words import normalise, set_timer_name
from appliance.errors import GrammarUnsupportedError, LanguageModelError
from appliance.handlers import Handled
from appliance.llm.base import LanguageModel, Message

_LOGGER = logging.getLogger(__name__)
NAME = "llm_tools"
OFFERED = ("device_on", "device_off", "device_toggle", "device_brightness", "device_state",
           "timer_set", "timer_list", "timer_cancel", "timer_remaining")  # fmt: skip
"""Time, date and sums are left to the fast path: the model would answer "what time is
it in Tokyo" with the local time."""
_HINTS = {"timer", "timers", "remind", "countdown", "light", "lights", "lamp", "lamps", "fan",
          "brightness", "dim", "brighter", "darker", "switch", "turn", "power"}  # fmt: skip
_OFF = {"off", "out", "shut", "stop", "kill", "down"}
_LEVEL = {"brightness", "dim", "dimmer", "brighter", "darker", "percent", "bright"}
_MORE = {"add", "more", "extra", "another", "longer", "shorter", "less"}
_TO_A_TIMER = re.compile(r"\b(to|from|on|off) (the|my) (\w+ ){0,2}timer\b")
_VERBS = {
    "device_off": _OFF,
    "device_toggle": {"toggle", "switch", "flip"},
    "device_brightness": {"brightness", "dim", "brighter", "darker", "percent", "bright"},
    "device_state": {"is", "are", "whether", "status", "state"},
    "timer_set": {"timer", "remind", "countdown", "alarm"},
    "timer_list": {"timer", "timers"},
    "timer_cancel": {"cancel", "stop", "delete", "remove", "clear"},
    "timer_remaining": {"left", "remaining", "long"},
}

BlockingRunner = Callable[..., Awaitable[Any]]


class LlmToolCaller:
    """A `TextHandler`, tried after the fast path."""

    def __init__(
        self,
        llm: LanguageModel,
        registry: ToolRegistry,
        devices: DeviceDirectory,
        run_blocking: BlockingRunner,
        *,
        origin: str = "voice",
        phrase: bool = True,
    ) -> None:
        self.llm = llm
        self.registry = registry
        self.devices = devices
        self.run_blocking = run_blocking
        self.origin = origin
        self.phrase = phrase
        """Let the model phrase the answer (checked); False: always the template."""
        self.enabled = True
        self.last_phrasing: Phrasing | None = None
        """How the last answer was phrased (for tests and the benchmark)."""
        self.tools = [t for name in OFFERED if (t := registry.get(name)) is not None]
        # Tools added beside the built-in ones (the camera's look) check their own calls.
        self.tools += [t for t in registry.tools if t.words_check is not None]
        self.schema = call_schema(self.tools)

    def worth_asking(self, text: str) -> bool:
        words = set(tokens(text))
        hinted = bool(words & _HINTS) or any(words & t.hints for t in self.tools)
        return bool(self.tools) and (hinted or bool(self.devices.mentioned(text)))

    async def handle(self, text: str, turn: int) -> Handled | None:
        if not self.enabled or not self.worth_asking(text):
            return None
        tools = self.relevant(text)
        messages = [Message("system", self.prompt(tools)), Message("user", text)]
        try:
            raw = await self.run_blocking(
                self.llm.complete_json, messages, call_schema(tools), threading.Event()
            )
        except GrammarUnsupportedError as err:
            _LOGGER.warning("tool calls by the language model are off: %s", err)
            self.enabled = False
            return None
        except LanguageModelError as err:
            _LOGGER.warning("tool call failed, answering in words instead: %s", err)
            return None
        try:
            call = json.loads(raw)
            tool, arguments = call["tool"], call.get("arguments", {})
            if not isinstance(tool, str) or not isinstance(arguments, dict):
                raise TypeError("tool must be a name and arguments an object")
        except (ValueError, KeyError, TypeError) as err:
            # Cut off at max_tokens (a number that never ends): no call was made.
            _LOGGER.warning("the language model's tool call %r is not usable: %s", raw, err)
            return None
        if tool == "none":
            return None
        if any(t.name == tool for t in self.tools):
            checked = self.check(tool, arguments, text)
            if checked is None:
                _LOGGER.info("dropped the model's call %s(%s) for %r", tool, arguments, text)
                return None
            arguments = checked
        self.registry.bus.publish(
            ev.IntentRecognized(turn=turn, stream_time=0.0, intent=tool, slots=dict(arguments),
                                score=0.0, path="model", text=text)
        )  # fmt: skip
        context = CallContext("llm", turn, text, self.origin,
                              intent=json.dumps({"intent": tool, "slots": arguments,
                                                 "score": 0.0, "path": "model"}))  # fmt: skip
        outcome = await self.registry.call(tool, arguments, context)
        if not outcome.ok or not self.phrase or tool not in OFFERED:
            # Only the device and timer results have facts the check knows; another
            # tool's answer (the camera's look: what it read) is spoken as it is.
            return Handled(outcome.message, NAME, tool)
        phrased = await self.phrase_result(text, outcome)
        return Handled(phrased.text, NAME, tool)

    async def phrase_result(self, text: str, outcome: Outcome) -> Phrasing:
        """The model's sentence for a tool's result if it keeps the facts, else the
        template; logged either way."""
        facts = phrasing.facts_of(
            outcome.tool, outcome.arguments, outcome.message, self.devices.names
        )
        prompt = phrasing.messages(text, outcome.message)
        try:
            said = await self.run_blocking(phrasing.first_sentence, self.llm, prompt)
        except LanguageModelError as err:
            said, reason = "", f"the language model failed: {err}"
        else:
            reason = phrasing.check(said, facts)
        if reason:
            _LOGGER.info(
                "answer by template %r (the model's %r: %s)", outcome.message, said, reason
            )
            result = Phrasing(outcome.message, False, reason, said)
        else:
            _LOGGER.info("answer phrased by the model: %r (template %r)", said, outcome.message)
            result = Phrasing(said, True, "", said)
        self.last_phrasing = result
        return result

    def relevant(self, text: str) -> list[Tool]:
        """Only the tools the words could be about: a tiny model chooses better among
        three tools than among nine."""
        words = set(tokens(text))
        timers = bool(words & {"timer", "timers", "remind", "countdown", "alarm"})
        devices = bool(self.devices.mentioned(text)) or bool(words & (_HINTS - {"timer",
                       "timers", "remind", "countdown"}))  # fmt: skip
        chosen = [t for t in self.tools if (timers and t.name.startswith("timer_"))
                  or (devices and t.name.startswith("device_"))]  # fmt: skip
        chosen += [t for t in self.tools if words & t.hints and t not in chosen]
        return chosen or self.tools

    def prompt(self, tools: list[Tool] | None = None) -> str:
        lines = [f"- {t.name}({', '.join(p.name for p in t.params)}): {t.description}"
                 for t in (tools or self.tools)]  # fmt: skip
        devices = ", ".join(self.devices.names) or "none"
        return (
            "You control a home. Pick the one tool that does what the user asks, or the tool "
            '"none" for questions and chat. Tools:\n'
            + "\n".join(lines)
            + f"\nDevices: {devices}.\nTimer lengths are in seconds. Answer with JSON only."
        )

    def check(self, tool: str, arguments: dict[str, Any], text: str) -> dict[str, Any] | None:
        """The call as the words support it, or None when the words do not support it."""
        spec = self.registry.get(tool)
        if spec is not None and spec.words_check is not None:
            return spec.words_check(arguments, text)
        words = tokens(text)
        question = bool(words) and words[0] in ("is", "are", "was", "were", "do", "does")
        if tool in ("device_on", "device_off", "device_toggle") and question:
            return None
        if tool == "device_on":
            if set(words) & (_OFF | _LEVEL):
                return None  # "I need the porch light" may mean on; "…off" never does,
                # nor "…80 percent" (a brightness whisper garbled)
        elif not set(words) & _VERBS[tool]:
            return None
        checked = dict(arguments)
        if tool.startswith("device_"):
            named = {d.name for d in self.devices.mentioned(text)}
            if checked.get("device") not in named:
                return None
        if tool == "device_brightness":
            levels = every_value(words, parse_number)
            if len(levels) != 1:
                return None
            checked["percent"] = levels[0]  # out of range is refused by validation
        if tool == "timer_set":
            if set(words) & _MORE or _TO_A_TIMER.search(" ".join(words)):
                return None  # "(add) two minutes to the pasta timer" changes one
            lengths = every_value(words, parse_duration)
            if len(lengths) != 1:
                return None
            checked["seconds"] = lengths[0]
            checked["name"] = set_timer_name(normalise(text))
        return checked


def call_schema(tools: list[Tool]) -> dict[str, Any]:
    """JSON schema of one call: a real tool with its typed arguments, or "none"."""
    options: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {"tool": {"const": tool.name}, "arguments": _closed(tool)},
            "required": ["tool", "arguments"],
        }
        for tool in tools
    ]
    options.append({"type": "object", "properties": {"tool": {"const": "none"}},
                    "required": ["tool"]})  # fmt: skip
    return {"anyOf": options}


def _closed(tool: Tool) -> dict[str, Any]:
    """The tool's arguments without free text: a tiny model fills an open string with
    the same word until it runs out of tokens, and the JSON never closes."""
    schema = tool.arguments_schema()
    free = [p.name for p in tool.params if p.type == "string" and not p.enum]
    for name in free:
        schema["properties"].pop(name)
    schema["required"] = [r for r in schema["required"] if r not in free]
    return schema
