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
    runs_on_cpu: bool
    """True when the model's work runs on the CPU cores TTS needs too (llama.cpp); the
    pipeline then holds the model between tokens while a sentence is synthesised, so that
    each of them gets every core in turn. False for the NPU."""

    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        """Yield reply text piece by piece. Blocking: iterate it in a worker thread.
        Stops early once `cancel` is set."""

    def complete_json(
        self, messages: list[Message], schema: dict[str, Any], cancel: threading.Event
    ) -> str:
        """A reply held by a grammar to JSON that fits `schema` (llama.cpp's JSON-schema
        grammar), as text. Blocking. Raises GrammarUnsupportedError when the backend has
        no grammar (RKLLM)."""
