"""What the boxes tell each other: a hello (so each knows who is there), a claim (I heard
the wake word, this well), and a won (I answer it). Small JSON datagrams."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("hello", "claim", "won")
MAX_DATAGRAM = 1024


@dataclass(frozen=True)
class Message:
    kind: str
    box: str
    """The box's name (its room); the same on two boxes is reported, never fatal."""
    instance: str
    """A random id per process: tells two boxes of the same name apart, and a box its
    own datagrams looped back."""
    wake: str = ""
    at: float = 0.0
    """Wall-clock time of the detection, for the logs (the boxes match claims by when
    they arrive, not by their clocks)."""
    score: float = 0.0
    level_db: float = -120.0

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Message:
        """Raises ValueError for anything that is not one of ours."""
        if len(data) > MAX_DATAGRAM:
            raise ValueError("too long")
        raw: Any = json.loads(data)
        if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
            raise ValueError("not a rooms message")
        try:
            message = cls(
                kind=str(raw["kind"]), box=str(raw["box"]), instance=str(raw["instance"]),
                wake=str(raw.get("wake", "")), at=float(raw.get("at", 0.0)),
                score=float(raw.get("score", 0.0)), level_db=float(raw.get("level_db", -120)),
            )  # fmt: skip
        except (KeyError, TypeError) as err:
            raise ValueError(f"a field is missing or wrong: {err}") from None
        if not message.box or not message.instance:
            raise ValueError("no box name")
        return message


def rank(claim: Message) -> tuple[float, float, str, str]:
    """Higher is better, and every box computes the same order: the speech level (the
    nearest box hears the wake word loudest; 0.5 dB steps, so that a hair's difference
    does not beat a clearly better score), then the wake score, then the names."""
    return (round(claim.level_db * 2) / 2, round(claim.score, 2), claim.box, claim.instance)
