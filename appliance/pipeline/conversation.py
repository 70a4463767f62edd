"""A short memory of the conversation, so "and of Germany?" follows "the capital of France".

Bounded by an estimate of tokens (the oldest exchange is dropped first) and forgotten
after a while without talking. The estimate is characters / 4, close to what BPE
tokenisers give for English and cheap enough to run on every turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.llm.base import Message

CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Exchange:
    user: str
    assistant: str
    """What the user actually heard: cut where an interrupted reply was cut off."""


class Conversation:
    def __init__(
        self,
        *,
        max_tokens: int = 512,
        idle_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_tokens = max_tokens
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._exchanges: list[Exchange] = []
        self._last = clock()

    @property
    def exchanges(self) -> tuple[Exchange, ...]:
        self._expire()
        return tuple(self._exchanges)

    def messages(self, system_prompt: str, user: str) -> list[Message]:
        """The prompt for a new request: system prompt, remembered exchanges, the request."""
        prompt = [Message("system", system_prompt)] if system_prompt else []
        for exchange in self.exchanges:
            prompt += [Message("user", exchange.user), Message("assistant", exchange.assistant)]
        return [*prompt, Message("user", user)]

    def add(self, user: str, assistant: str) -> None:
        self._expire()
        if assistant.strip():
            self._exchanges.append(Exchange(user, assistant.strip()))
        self._last = self._clock()
        while self._exchanges and self._tokens() > self.max_tokens:
            self._exchanges.pop(0)

    def _tokens(self) -> int:
        return sum(estimate_tokens(e.user) + estimate_tokens(e.assistant) for e in self._exchanges)

    def _expire(self) -> None:
        if self._exchanges and self._clock() - self._last > self.idle_seconds:
            self._exchanges.clear()
