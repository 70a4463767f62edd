"""The tool registry: a tool is a name, a description, typed parameters (a small JSON
schema) and an async handler. Every call from every path (sentence library, language model,
button, MQTT, API) goes through `ToolRegistry.call`, which validates the arguments, runs
the tool, writes the audit log and publishes an `action` event."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from appliance import events as ev
from appliance.actions.audit import AuditEntry, AuditLog

_LOGGER = logging.getLogger(__name__)
COULD_NOT = "Sorry, I couldn't do that."


class ToolError(Exception):
    """A request the tool refuses, with the sentence to say ("I don't know a device
    called garage door.")."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    """string, number, integer or boolean."""
    description: str = ""
    enum: tuple[str, ...] = ()
    """Allowed values (strings); empty = any."""
    minimum: float | None = None
    maximum: float | None = None
    required: bool = True

    def schema(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.type}
        if self.description:
            spec["description"] = self.description
        if self.enum:
            spec["enum"] = list(self.enum)
        if self.minimum is not None:
            spec["minimum"] = self.minimum
        if self.maximum is not None:
            spec["maximum"] = self.maximum
        return spec

    def check(self, value: Any) -> Any:
        """The value, coerced (an integral float for an integer); raises ToolError."""
        kind = self.type
        if kind == "string":
            if not isinstance(value, str):
                raise ToolError(f"{self.name} must be text")
            value = value.strip()
            if self.enum and value not in self.enum:
                raise ToolError(f"{self.name} must be one of: {', '.join(self.enum)}")
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise ToolError(f"{self.name} must be true or false")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ToolError(f"{self.name} must be a number")
        if kind == "integer":
            if float(value) != int(value):
                raise ToolError(f"{self.name} must be a whole number")
            value = int(value)
        if self.minimum is not None and value < self.minimum:
            raise ToolError(f"{self.name} must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise ToolError(f"{self.name} must be at most {self.maximum:g}")
        return value


Handler = Callable[[dict[str, Any]], Awaitable[str]]
WordsCheck = Callable[[dict[str, Any], str], dict[str, Any] | None]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    handler: Handler
    params: tuple[Param, ...] = ()
    hints: frozenset[str] = frozenset()
    """Words that make the language model worth asking about this tool (a tool added
    beside the built-in ones, such as the camera's `look`)."""
    words_check: WordsCheck | None = None
    """Checks the language model's call against what was said: the arguments as the
    words support them, or None to drop the call. A tool with one is offered to the
    language model."""

    def arguments_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {p.name: p.schema() for p in self.params},
            "required": [p.name for p in self.params if p.required],
        }

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(arguments, dict):
            raise ToolError("the arguments must be a JSON object")
        known = {p.name for p in self.params}
        extra = sorted(set(arguments) - known)
        if extra:
            raise ToolError(f"the {self.name} tool takes no {', '.join(extra)}")
        checked = {}
        for param in self.params:
            if param.name in arguments and arguments[param.name] is not None:
                checked[param.name] = param.check(arguments[param.name])
            elif param.required:
                raise ToolError(f"the {self.name} tool needs {param.name}")
        return checked


@dataclass(frozen=True)
class CallContext:
    path: str
    """fast, llm, button, mqtt or api: how the call was decided."""
    turn: int = 0
    transcript: str = ""
    origin: str = "voice"
    """Who asked: voice, typed, button, mqtt, api, timer."""
    intent: str = ""
    """The recognised intent behind the call, as JSON (intent, slots, score, path), for
    the audit log; "" when none (a button, the language model's own call)."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    """What to say: the tool's answer, or why it could not be done."""
    tool: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)


class ToolRegistry:
    def __init__(self, bus: ev.EventBus, audit: AuditLog | None = None) -> None:
        self.bus = bus
        self.audit = audit
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    @property
    def tools(self) -> Sequence[Tool]:
        return list(self._tools.values())

    async def call(self, name: str, arguments: dict[str, Any], context: CallContext) -> Outcome:
        """Validate and run one tool call; never raises for a bad call or a failing tool
        (the outcome says what went wrong, in a sentence to speak)."""
        tool = self._tools.get(name)
        if tool is None:
            outcome = Outcome(False, f"{COULD_NOT} I have no tool called {name}.", name, arguments)
        else:
            try:
                checked = tool.validate(arguments)
            except ToolError as err:
                outcome = Outcome(False, f"{COULD_NOT} {_sentence(str(err))}", name, arguments)
            else:
                outcome = await self._run(tool, checked)
        self._record(outcome, context)
        return outcome

    def refuse(
        self, name: str, arguments: dict[str, Any], message: str, context: CallContext
    ) -> Outcome:
        """Record a request that was understood but refused before any tool ran
        (an unknown device, a timer of ten years), so it is logged like any other."""
        outcome = Outcome(False, message, name, arguments)
        self._record(outcome, context)
        return outcome

    def record(self, outcome: Outcome, context: CallContext) -> None:
        """Log and publish something done outside a tool (the mute switch, a long press)."""
        self._record(outcome, context)

    async def _run(self, tool: Tool, arguments: dict[str, Any]) -> Outcome:
        try:
            message = await tool.handler(arguments)
        except ToolError as err:
            return Outcome(False, str(err), tool.name, arguments)
        except Exception as err:  # a broken device must not end the session
            _LOGGER.exception("tool %s failed", tool.name)
            return Outcome(False, f"{COULD_NOT} ({err})", tool.name, arguments)
        return Outcome(True, message, tool.name, arguments)

    def _record(self, outcome: Outcome, context: CallContext) -> None:
        if self.audit is not None:
            try:
                self.audit.append(
                    AuditEntry(
                        time=time.time(),
                        origin=context.origin,
                        path=context.path,
                        turn=context.turn,
                        transcript=context.transcript,
                        tool=outcome.tool,
                        arguments=outcome.arguments,
                        ok=outcome.ok,
                        result=outcome.message,
                        intent=context.intent,
                    )
                )
            except Exception:
                _LOGGER.exception("could not write the audit log")
        self.bus.publish(
            ev.Action(
                turn=context.turn,
                stream_time=0.0,
                tool=outcome.tool,
                arguments=dict(outcome.arguments),
                ok=outcome.ok,
                result=outcome.message,
                path=context.path,
            )
        )


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."
