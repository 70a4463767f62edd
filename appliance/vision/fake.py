"""Stand-ins for unit tests: a camera that returns scripted frames or fails, a reader
with fixed lines, a describer with a fixed sentence."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from appliance.vision.ocr import TextLine


class FakeCamera:
    """Returns the scripted items in turn (the last one again when they run out); an
    exception in the script is raised instead of returning a frame."""

    def __init__(self, script: Sequence[np.ndarray | Exception], name: str = "fake") -> None:
        self.script = list(script)
        self.name = name
        self.captures = 0
        self.closed = 0

    def capture(self) -> np.ndarray:
        item = self.script[min(self.captures, len(self.script) - 1)]
        self.captures += 1
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.closed += 1


class FakeReader:
    name = "fake-ocr"

    def __init__(self, lines: Sequence[str] = (), confidence: float = 0.95) -> None:
        self.lines = [
            TextLine(text, confidence, top=20.0 * i, left=0.0) for i, text in enumerate(lines)
        ]
        self.images: list[np.ndarray] = []

    def read(self, image: np.ndarray) -> list[TextLine]:
        self.images.append(image)
        return list(self.lines)


class FakeDescriber:
    name = "fake-vlm"

    def __init__(self, sentence: str) -> None:
        self.sentence = sentence
        self.prompts: list[str] = []

    def describe(self, image: np.ndarray, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.sentence
