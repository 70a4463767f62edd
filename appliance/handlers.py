"""Request handlers: answer a request before (instead of) the language model.

The actions fast path ("turn on the porch light"), vision ("read this") and the like
implement `TextHandler`. The pipeline tries its handlers in order on every transcript or
typed request; the first that returns `Handled` answers it, `None` passes it on, and a
request nobody claims goes to the LLM. A handler that asks back may also implement
`AsksBack.forget_pending`; one with slow work to do on a transcript may implement
`Prepares.prepare`, called at a pause with the words heard so far.

A `Handled` reply is what a tool really did: the pipeline speaks it as it is. Only the
LLM's free text is checked for claims of actions that did not run
(`appliance.understanding.claims`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

_LOGGER = logging.getLogger(__name__)


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
    acted: bool = True
    """False when the handler only answered or asked back ("which light?", "did you mean
    …?") and changed nothing: the turn may still be withdrawn if the speaker goes on."""


class TextHandler(Protocol):
    async def handle(self, text: str, turn: int) -> Handled | None:
        """Answer `text`, or return None to leave it to the next handler / the LLM."""
        ...


class AsksBack(Protocol):
    """Optional, next to `TextHandler.handle`: a handler that can ask back ("which light?",
    "did you mean the porch light?") and keeps the question to complete it with the next
    transcript implements `forget_pending`."""

    def forget_pending(self) -> None:
        """Drop the question waiting for an answer: a new request began. The pipeline calls
        it at the start of every turn begun by the wake word or the button, and when a
        transcript heard in the follow-up window begins with the wake phrase (not on typed
        requests: a typed "which light?" is answered by typing). May be a coroutine."""
        ...


async def forget_pending(handlers: Iterable[object]) -> None:
    """Call `forget_pending` on every handler that has it; one that fails is logged."""
    for handler in handlers:
        forget = getattr(handler, "forget_pending", None)
        if not callable(forget):
            continue
        try:
            outcome = forget()
            if inspect.isawaitable(outcome):
                await outcome
        except asyncio.CancelledError:
            raise
        except Exception:
            _LOGGER.exception("handler %r could not forget its question", handler)


class Prepares(Protocol):
    """Optional, next to `TextHandler.handle`: work a handler can do on a transcript
    before the request is known to be over (at a pause, on its speculative transcript),
    so that `handle` finds it done if the request ends on the same words."""

    async def prepare(self, text: str) -> None:
        """No side effects: nothing is switched, said, asked or remembered as asked.
        The speaker may go on, and then `handle` sees other words."""
        ...


async def prepare(handlers: Iterable[object], text: str) -> None:
    """Call `prepare` on every handler that has it; one that fails is logged."""
    for handler in handlers:
        ahead = getattr(handler, "prepare", None)
        if not callable(ahead):
            continue
        try:
            await ahead(text)
        except asyncio.CancelledError:
            raise
        except Exception:
            _LOGGER.exception("handler %r could not prepare %r", handler, text)
