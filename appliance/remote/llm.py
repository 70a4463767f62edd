"""The language model stage with a remote in front (`llm.remote`): the remote writes the
reply while it can; when it cannot, the local model writes it, or finishes it when the
remote stopped halfway (the person has heard the first part already)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from appliance.errors import LanguageModelError
from appliance.llm.base import LanguageModel, Message
from appliance.remote.breaker import Breaker

_LOGGER = logging.getLogger(__name__)


class RemoteLanguageModel(LanguageModel, Protocol):
    def health(self) -> str | None: ...


@runtime_checkable
class ContinuesReplies(Protocol):
    """A local model that can go on from a reply another model began."""

    def stream_after(
        self, messages: list[Message], begun: str, cancel: threading.Event
    ) -> Iterator[str]: ...


class FallbackLlm:
    """A LanguageModel: the remote, else the local model, with the breaker between."""

    def __init__(
        self,
        remote: RemoteLanguageModel,
        local: LanguageModel,
        breaker: Breaker,
        fell_back: Callable[[str, str], None],
    ) -> None:
        """`fell_back(stage, reason)`: a turn went local (published as an event)."""
        self.remote = remote
        self.local = local
        self.breaker = breaker
        self._fell_back = fell_back

    @property
    def runs_on_cpu(self) -> bool:
        """While the remote writes, Piper need not wait for it."""
        return self.local.runs_on_cpu if self.breaker.up is False else False

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        if not self.breaker.allows():
            yield from self.local.stream(messages, cancel)
            return
        begun: list[str] = []
        try:
            for piece in self.remote.stream(messages, cancel):
                begun.append(piece)
                yield piece
        except LanguageModelError as err:
            reason = str(err)
        else:
            self.breaker.succeeded()
            return
        self.breaker.failed(reason)
        if cancel.is_set():
            return
        text = "".join(begun)
        self._fell_back("llm", reason if not text else f"{reason} (after {len(text)} characters)")
        if not text:
            yield from self.local.stream(messages, cancel)
        elif isinstance(self.local, ContinuesReplies):
            yield from self.local.stream_after(messages, text, cancel)
        else:  # the local model cannot go on from it: its own answer follows, said as such
            yield ". Here is my own answer: "
            yield from self.local.stream(messages, cancel)

    def complete_json(
        self, messages: list[Message], schema: dict[str, Any], cancel: threading.Event
    ) -> str:
        if self.breaker.allows():
            try:
                reply = self.remote.complete_json(messages, schema, cancel)
            except LanguageModelError as err:
                self.breaker.failed(str(err))
                self._fell_back("llm", str(err))
            else:
                self.breaker.succeeded()
                return reply
        return self.local.complete_json(messages, schema, cancel)
