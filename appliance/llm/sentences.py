"""Cutting a token stream into sentences as soon as each one is complete, so the first
sentence can be spoken while the model still writes the rest."""

from __future__ import annotations

import re

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "approx",
    "no", "fig", "mt", "ft", "inc", "ltd", "co",
}  # fmt: skip
_END = re.compile(r"[.!?;:](?:[\"')\]]*)(?=\s)|\n+")
_MARKUP = re.compile(r"[*_#`>|~]+")


def clean_for_speech(text: str) -> str:
    """Drop markdown and collapse white space: what TTS should say."""
    return " ".join(_MARKUP.sub(" ", text).split())


class SentenceSplitter:
    """Feed text pieces; get back the sentences they completed.

    A full stop counts only once white space follows it (so "3.5" and "Dr. Who" are not
    cut) and only when the sentence has at least `min_chars` characters (so a list
    marker "1." is not spoken alone). A run-on sentence longer than `max_chars` is cut
    at its last comma (or space): the listener hears it sooner, and Piper's memory grows
    with the longest text it is given.
    """

    def __init__(self, min_chars: int = 12, max_chars: int = 160) -> None:
        self._buffer = ""
        self._min_chars = min_chars
        self._max_chars = max_chars

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        sentences: list[str] = []
        search_from = 0
        while True:
            match = _END.search(self._buffer, search_from)
            if match is None:
                break
            candidate = self._buffer[: match.end()]
            words = candidate.rstrip(".!?;:\"')] \n").split()
            last_word = words[-1].lower() if words else ""
            is_abbreviation = match.group(0).startswith(".") and last_word in _ABBREVIATIONS
            if is_abbreviation or len(candidate.strip()) < self._min_chars:
                search_from = match.end()
                continue
            sentence = clean_for_speech(candidate)
            if sentence:
                sentences.append(sentence)
            self._buffer = self._buffer[match.end() :]
            search_from = 0
        while len(self._buffer) > self._max_chars:
            head = self._buffer[: self._max_chars]
            cut = max(head.rfind(", "), head.rfind("; "))
            cut = cut + 1 if cut >= self._min_chars else head.rfind(" ")
            if cut < self._min_chars:
                cut = self._max_chars
            sentences.append(clean_for_speech(self._buffer[:cut]))
            self._buffer = self._buffer[cut:]
        return sentences

    def flush(self) -> list[str]:
        rest = clean_for_speech(self._buffer)
        self._buffer = ""
        return [rest] if rest else []
