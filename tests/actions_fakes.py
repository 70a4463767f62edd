"""A stand-in for the pipeline's control surface, for the actions unit tests."""

from __future__ import annotations

from typing import Any


class ControlsSpy:
    """Records what the actions asked of the pipeline (say, mute, listen, interrupt)."""

    def __init__(self, *, listening: bool = True) -> None:
        self.handlers: list[Any] = []
        self.said: list[tuple[str, str | None]] = []
        self.muted = False
        self.mutes: list[tuple[bool, str]] = []
        self.listens: list[str] = []
        self.interrupts: list[str] = []
        self.listening = listening

    async def say(self, text: str, *, cue: str | None = None) -> None:
        self.said.append((text, cue))

    def set_muted(self, muted: bool, *, by: str) -> None:
        self.muted = muted
        self.mutes.append((muted, by))

    def listen_now(self, *, by: str) -> bool:
        self.listens.append(by)
        return self.listening and not self.muted

    def interrupt(self, by: str, **_: Any) -> bool:
        self.interrupts.append(by)
        return False
