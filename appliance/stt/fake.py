"""Scripted speech-to-text for unit tests: returns the next line of a script per call."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from appliance.errors import SpeechToTextError


class ScriptedStt:
    def __init__(self, transcripts: Iterable[str | Exception]) -> None:
        self._script = list(transcripts)
        self.heard: list[np.ndarray] = []

    def transcribe(self, audio: np.ndarray, prompt: str = "") -> str:
        self.heard.append(audio)
        if not self._script:
            raise SpeechToTextError("scripted STT has no transcript left")
        item = self._script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class DescribingStt:
    """ "Transcribes" any audio as its length ("1.2 seconds of audio"): for running the
    config page without models (`appliance web --fake-engines`)."""

    def transcribe(self, audio: np.ndarray, prompt: str = "") -> str:
        return f"{len(audio) / 16000:.1f} seconds of audio"
