"""Short sounds that tell the user where the appliance is: heard you (wake), done
listening, something went wrong. Made here, not loaded: a few sine notes with soft
edges, at the voice's sample rate."""

from __future__ import annotations

import numpy as np

_NOTES = {
    "wake": ((660.0, 0.07), (880.0, 0.09)),
    "done": ((587.0, 0.08),),
    "error": ((440.0, 0.12), (330.0, 0.16)),
    "timer": ((988.0, 0.12), (784.0, 0.12), (988.0, 0.12), (784.0, 0.2)),
}


def earcon(kind: str, rate: int, *, volume: float = 0.25) -> np.ndarray:
    if kind not in _NOTES:
        raise ValueError(f"unknown earcon {kind!r} (known: {', '.join(_NOTES)})")
    parts = []
    for frequency, seconds in _NOTES[kind]:
        t = np.arange(int(seconds * rate)) / rate
        ramp = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)  # 10 ms fades: no clicks
        parts.append(np.sin(2 * np.pi * frequency * t) * ramp)
    return (np.concatenate(parts) * volume * 32767).astype(np.int16)
