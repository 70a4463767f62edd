"""End-of-turn detection: has the speaker finished, or only paused?

`SmartTurn` runs pipecat's Smart Turn v3.2 model (a Whisper-tiny encoder with a small
head, 8.7 MB, BSD-2; the file is taken from the pipecat-ai wheel, see the catalog). It
reads the last 8 s of the request and gives the probability that the sentence is
complete, from the words and from the voice's fall. The end-pointer asks it at each
short pause (`audio.vad.Endpointer`), so "set a timer for … ten minutes" is not cut at
the pause, and "what time is it" ends 0.2 s after its last word, not 0.7 s.

The model hears synthetic and some real voices end a phrase like "set a timer for" with
the fall of a finished sentence. So the words are asked too (`unfinished_ending`): the
transcript of the pause, made anyway for the speculative answer, must not end on a word
that leaves an English sentence open ("for", "the", "and", "um", "…").

`ScriptedTurnDetector` is the fake for unit tests: it answers from a list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from appliance.audio.format import PIPELINE_RATE
from appliance.audio.mel import log_mel
from appliance.errors import ModelError

SECONDS = 8
"""The model sees the last 8 s of the request; shorter audio is padded before it."""


@dataclass(frozen=True)
class TurnVerdict:
    complete: bool
    probability: float


class TurnDetector(Protocol):
    def judge(self, audio: np.ndarray) -> TurnVerdict:
        """Whether the int16 16 kHz request audio so far is a finished turn."""


class SmartTurn:
    """Smart Turn v3 on onnxruntime. One call takes ~45 ms on one core of a laptop."""

    def __init__(self, model_path: Path, *, threads: int = 1, threshold: float = 0.5) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise ModelError(f"cannot load the end-of-turn model {model_path}: {err}") from err
        inputs = [i.name for i in self._session.get_inputs()]
        if inputs != ["input_features"]:
            raise ModelError(
                f"{model_path} is not a Smart Turn v3 model (its inputs are {inputs}); "
                "restore it with `appliance models prepare`"
            )
        self.threshold = threshold

    def judge(self, audio: np.ndarray) -> TurnVerdict:
        window = SECONDS * PIPELINE_RATE
        samples = np.asarray(audio[-window:], dtype=np.float32) / 32768.0
        if len(samples) < window:  # the model was trained with silence before, not after
            samples = np.concatenate([np.zeros(window - len(samples), np.float32), samples])
        features = log_mel(samples)[None, :, :]
        (out,) = self._session.run(None, {"input_features": features})
        probability = float(np.asarray(out).reshape(-1)[0])
        return TurnVerdict(probability > self.threshold, probability)


class ScriptedTurnDetector:
    """A fake for tests: each call takes the next verdict (True = finished, or a float:
    the probability); the last one repeats. `raises` makes every call fail, as a broken
    model would."""

    def __init__(self, verdicts: Iterable[bool | float] = (True,), *, raises: bool = False) -> None:
        self._verdicts = list(verdicts) or [True]
        self.raises = raises
        self.calls: list[int] = []

    def judge(self, audio: np.ndarray) -> TurnVerdict:
        self.calls.append(len(audio))
        if self.raises:
            raise RuntimeError("the end-of-turn model failed")
        verdict = self._verdicts.pop(0) if len(self._verdicts) > 1 else self._verdicts[0]
        if isinstance(verdict, bool):
            return TurnVerdict(verdict, 1.0 if verdict else 0.0)
        return TurnVerdict(verdict > 0.5, float(verdict))


_OPEN_ENDINGS = frozenset(
    "a an the my your our their and or but nor because if than whether "  # noqa: SIM905
    "for to of with into onto between through during without towards um uh er erm".split()
)
"""Words an English request does not end on. Words that may end one are left out:
particles ("turn the light on"), pronouns ("what is that"), "is" ("what time it is"),
"from" ("where are you from"), "please"."""
_TRAILING_MARK = re.compile(r"(\.\.\.|…|,|-|–|—)\s*$")
_WORD = re.compile(r"[\w'%]+")


def unfinished_ending(text: str, language: str = "en") -> str:
    """Why a transcript sounds cut off mid-sentence ("" when it may be whole).

    Empty text is unfinished: the pause came after the wake word alone."""
    stripped = text.strip()
    if not stripped:
        return "nothing said yet"
    if _TRAILING_MARK.search(stripped):
        return "trails off"
    if not language.startswith("en"):
        return ""
    words = _WORD.findall(stripped.lower())
    # Whisper ends even "what is the capital of" with a question mark: the words decide.
    if words and words[-1] in _OPEN_ENDINGS:
        return f"ends on {words[-1]!r}"
    return ""
