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
_CLAUSE = re.compile(
    r"[,;]\s+|\s+(?=(?:and|but|so|because|while|although)\s+"
    r"(?:i|you|he|she|it|we|they|there|this|that|the|a|an|my|your|its|their)\s)",
    re.IGNORECASE,
)
"""Where a long first sentence may be cut: after a comma (not "384,400": a space must
follow), or before a conjunction that starts a clause ("…, and it orbits", not
"editing and improving")."""
_QUESTION_START = re.compile(
    r"\s*(?:what|who|whom|whose|which|where|when|why|how|do|does|did|is|are|was|were|"
    r"can|could|would|will|shall|should|may|might|have|has)\b",
    re.IGNORECASE,
)
"""A sentence that opens like a question is not cut: Piper speaks a question's melody
from its question mark, and the claims check (`understanding.claims`) lets a question
("Shall I set a timer, …?") through only whole."""


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

    With `first_clause_chars`, the first piece of a reply may be a clause: once a clause
    of at least that many characters is complete (a comma, or a conjunction after it)
    and its sentence has not ended, it goes out alone, so the first sound does not wait
    for the end of a long first sentence.
    """

    def __init__(
        self, min_chars: int = 12, max_chars: int = 160, *, first_clause_chars: int = 0
    ) -> None:
        self._buffer = ""
        self._min_chars = min_chars
        self._max_chars = max_chars
        self._first_clause_chars = first_clause_chars
        self._given = False

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
        if not sentences and not self._given and self._first_clause_chars:
            sentences = self._first_clause()
        self._given = self._given or bool(sentences)
        return sentences

    def _first_clause(self) -> list[str]:
        if _QUESTION_START.match(self._buffer):
            return []  # its "?" decides its melody, and that it claims nothing
        for match in _CLAUSE.finditer(self._buffer):
            clause = self._buffer[: match.start()].rstrip() + match.group(0).strip()[:1]
            if len(clause.strip()) < self._first_clause_chars:
                continue
            if not self._buffer[match.end() :].strip():
                return []  # the clause's end may still grow ("and" might be "android")
            self._buffer = self._buffer[match.end() :]
            return [clean_for_speech(clause.strip())]
        return []

    def flush(self) -> list[str]:
        rest = clean_for_speech(self._buffer)
        self._buffer = ""
        return [rest] if rest else []
