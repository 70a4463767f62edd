from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    role: str
    """system, user or assistant."""
    content: str


class LanguageModel(Protocol):
    def stream(self, messages: list[Message], cancel: threading.Event) -> Iterator[str]:
        """Yield reply text piece by piece. Blocking: iterate it in a worker thread.
        Stops early once `cancel` is set."""
