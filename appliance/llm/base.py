from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    role: str
    """system, user or assistant."""
    content: str


class LanguageModel(Protocol):
    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        """Yield reply text piece by piece. Blocking: iterate it in a worker thread.
        Stops early once `cancel` is set."""

    def complete_json(
        self, messages: list[Message], schema: dict[str, Any], cancel: threading.Event
    ) -> str:
        """A reply held by a grammar to JSON that fits `schema` (llama.cpp's JSON-schema
        grammar), as text. Blocking. Raises GrammarUnsupportedError when the backend has
        no grammar (RKLLM)."""

    def share_cpu(self, threads: int) -> None:
        """Use at most `threads` threads from the next token on; 0 restores the configured
        count. Lets TTS have a core while the model keeps writing (see Pipeline)."""
