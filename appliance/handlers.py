"""Request handlers: answer a request before (instead of) the language model.

The actions fast path ("turn on the porch light"), vision ("read this") and the like
implement `TextHandler`. The pipeline tries its handlers in order on every transcript or
typed request; the first that returns `Handled` answers it, `None` passes it on, and a
request nobody claims goes to the LLM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Handled:
    reply: str
    """What to say; "" says nothing."""
    handler: str
    """Who handled it, e.g. "fast_path", "vision"."""
    action: str = ""
    """The tool or action run, for events and logs."""
    follow_up: bool = False
    """Open the follow-up window after the reply (e.g. after asking "which light?")."""


class TextHandler(Protocol):
    async def handle(self, text: str, turn: int) -> Handled | None:
        """Answer `text`, or return None to leave it to the next handler / the LLM."""
        ...
