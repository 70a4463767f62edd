"""A scripted language model for unit tests: streams canned replies word by word."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from appliance.errors import LanguageModelError
from appliance.llm.base import Message


class ScriptedLlm:
    def __init__(
        self,
        replies: Iterable[str | Exception],
        *,
        token_delay: float = 0.0,
        json_replies: Iterable[str | Exception] = (),
    ) -> None:
        self._replies = list(replies)
        self._json_replies = list(json_replies)
        self.json_prompts: list[tuple[list[Message], dict[str, Any]]] = []
        self.token_delay = token_delay
        self.prompts: list[list[Message]] = []
        self.runs_on_cpu = True
        self.written_at: list[float] = []
        """When each token was handed out (time.monotonic)."""

    def complete_json(
        self, messages: list[Message], schema: dict[str, Any], cancel: threading.Event
    ) -> str:
        """The next scripted JSON reply (not checked against the schema: tests give bad
        ones on purpose)."""
        self.json_prompts.append((list(messages), schema))
        if not self._json_replies:
            raise LanguageModelError("scripted LLM has no JSON reply left")
        reply = self._json_replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        self.prompts.append(list(messages))
        if not self._replies:
            raise LanguageModelError("scripted LLM has no reply left")
        reply = self._replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        words = reply.split(" ")
        for index, word in enumerate(words):
            if cancel.is_set():
                return
            if self.token_delay:
                time.sleep(self.token_delay)
            self.written_at.append(time.monotonic())
            yield word if index == 0 else " " + word


class EchoLlm:
    """Answers every request by repeating it ("You asked: …"): lets the config page and
    its tests run without a model (`appliance web --fake-engines`)."""

    def __init__(self) -> None:
        self.prompts: list[list[Message]] = []

    runs_on_cpu = False

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        self.prompts.append(list(messages))
        asked = messages[-1].content if messages else ""
        words = f"You asked: {asked}".split(" ")
        for index, word in enumerate(words):
            if cancel.is_set():
                return
            yield word if index == 0 else " " + word
