"""The wake phrase as whisper writes it into a transcript: at the start of a request the
pre-roll may leave it there ("Hey Jarvis, turn on …"), and people say the name at the
end too ("…, thanks Jarvis"). Neither is part of the request."""

from __future__ import annotations

import re

_NEVER = re.compile(r"(?!x)x")


class WakePhrase:
    def __init__(self, phrase: str) -> None:
        self.phrase = phrase
        words = phrase.lower().split()
        self._start = _at_start(words)
        self._end = _name_at_end(words)

    def begins(self, text: str) -> bool:
        """Does `text` start with the wake phrase (or its last word, the name)?"""
        return self._start.match(text) is not None

    def strip(self, text: str) -> str:
        """`text` without the wake phrase at its start, nor the name said at its end
        ("Turn on the porch light, Jarvis.")."""
        text = self._start.sub("", text, count=1).strip()
        return self._end.sub("", text).strip()


def _at_start(words: list[str]) -> re.Pattern[str]:
    """The wake phrase (or its last word) at the start of a transcript."""
    if not words:
        return _NEVER
    escaped = [re.escape(w) for w in words]
    optional = "".join(rf"(?:{w}\W+)?" for w in escaped[:-1])
    return re.compile(rf"^\W*{optional}{escaped[-1]}\b\W*", re.IGNORECASE)


def _name_at_end(words: list[str]) -> re.Pattern[str]:
    """The name (the phrase's last word) said after a sentence, behind a comma ("…,
    Jarvis." "…, thanks Jarvis"): not a name inside one ("who was Jarvis")."""
    if not words:
        return _NEVER
    return re.compile(rf",\s*(?:thanks?\s+|thank\s+you\s+)?{re.escape(words[-1])}\W*$",
                      re.IGNORECASE)  # fmt: skip
