"""The `[conversation]` section: the pipeline's own settings (follow-ups, memory,
barge-in). Like every feature's section it lives with the package that reads it;
`appliance.config.AppConfig` gathers them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.errors import ConfigError


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class ConversationConfig:
    language: str = "en"
    """The language of the sentence library commands are understood with (en, de, fr, …:
    any language home-assistant-intents has)."""
    follow_up: str = "asked"
    """When to listen for a follow-up without the wake word: "asked" (only after a reply
    that asks something, or a request that expects more, as Home Assistant's
    continue_conversation), "always" (after every reply) or "never"."""
    follow_up_seconds: float = 5.0
    """How long a follow-up window stays open (with follow_up = "always", after a reply
    that asks nothing)."""
    question_follow_up_seconds: float = 5.0
    """How long the window stays open after a reply that asks something."""
    history_tokens: int = 512
    """How much of the conversation the LLM is given (oldest dropped first; 0 = none)."""
    history_idle_seconds: float = 300.0
    """Forget the conversation after this long without a turn."""
    barge_in: bool = True
    """While it speaks, the wake word or "stop" interrupts it."""
    stop_keyword_threshold: float = 0.97
    """Score (0–1) at which the "stop" keyword head interrupts a reply; 0 = off, leaving
    "stop" to the speech-to-text check alone."""

    def __post_init__(self) -> None:
        _check(self.follow_up in ("asked", "always", "never"),
               'conversation.follow_up must be "asked", "always" or "never"')  # fmt: skip
        _check(bool(re.fullmatch(r"[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?", self.language)),
               'conversation.language must be a language code such as "en" or "de"')  # fmt: skip
        _check(0 <= self.follow_up_seconds <= 30, "conversation.follow_up_seconds must be 0–30")
        _check(0 <= self.question_follow_up_seconds <= 30,
               "conversation.question_follow_up_seconds must be 0–30")  # fmt: skip
        _check(0 <= self.history_tokens <= 8192, "conversation.history_tokens must be 0–8192")
        _check(self.history_idle_seconds > 0, "conversation.history_idle_seconds must be > 0")
        _check(0 <= self.stop_keyword_threshold < 1,
               "conversation.stop_keyword_threshold must be 0 (off) or below 1")  # fmt: skip
