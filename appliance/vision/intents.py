"""Which spoken requests are about looking: "read this", "what does it say", "what do
you see", "is anyone at the door" and the like."""

from __future__ import annotations

import re

_READ = re.compile(
    r"\b(?:read (?:this|that|it|(?:out )?the (?:sign|label|text|note|screen|page|menu"
    r"|letter|card|box|board|poster|writing|words))"
    r"|what does (?:this|that|it|the \w+) say"
    r"|what(?:'s| is) written"
    r"|what do(?:es)? (?:the )?(?:sign|label|text|note|screen|page) says?)\b"
)
_DESCRIBE = re.compile(
    r"\b(?:what (?:do|can) you see|what you (?:can )?see"
    r"|what(?:'s| is) (?:this|that|in front of you)\b(?! (?:song|word|day|time|date))"
    r"|describe (?:this|that|it|what you see|the (?:scene|room|picture))"
    r"|look at (?:this|that)"
    r"|(?:is|are) (?:there )?(?:anyone|anybody|someone|somebody|people) (?:at|by|near|outside)"
    r"|who(?:'s| is) (?:at|by) the door)"
)


def vision_kind(text: str) -> str | None:
    """read, describe, or None when the request is not about looking."""
    said = " ".join(re.sub(r"[^\w']+", " ", text.lower().replace("’", "'")).split())
    if _READ.search(said):
        return "read"
    if _DESCRIBE.search(said):
        return "describe"
    return None


def look_kind(question: str, default: str = "read") -> str:
    """What a look asked for by a button, MQTT or the API should do: read or describe.
    A recognised request decides; any other question ("is the door open?") is for the
    vision model; no question at all gets `default`."""
    kind = vision_kind(question)
    if kind is not None:
        return kind
    return "describe" if question.strip() else default
