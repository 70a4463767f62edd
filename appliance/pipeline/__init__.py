"""One spoken turn after another: audio → wake word → end-pointing → STT → LLM → TTS → sink.

- `core.Pipeline`: the audio loop and the control of a running appliance (mute,
  push-to-talk, announcements, typed requests).
- `types`: what a pipeline is built from (`Engines`, `PipelineSettings`), what a turn
  gives back (`TurnResult`), and the appliance's `State`.
- `turn`: one turn, spoken or typed, once its text is known (`TurnRunner`).
- `stages`: the `Stage` enum and the one thread each stage's engine runs on.
- `endofturn`: deciding at each pause whether the request is over; speculative STT.
- `reply`: streaming the reply, sentence by sentence, from the LLM (or a handler) to TTS
  and the speaker; `barge_in`: the stop listener, the double-talk gate.
- `sentences`, `conversation`: cutting the model's text into sentences; the memory of a
  conversation. `config`: the `[conversation]` section.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.pipeline.core import Pipeline
    from appliance.pipeline.stages import Stage
    from appliance.pipeline.types import APOLOGY, Engines, PipelineSettings, State, TurnResult

_HOMES = {
    "Pipeline": "core", "Stage": "stages", "APOLOGY": "types", "Engines": "types",
    "PipelineSettings": "types", "State": "types", "TurnResult": "types",
}  # fmt: skip
__all__ = ["APOLOGY", "Engines", "Pipeline", "PipelineSettings", "Stage", "State", "TurnResult"]


def __getattr__(name: str) -> Any:
    """The package's names, imported when first used: reading the `[conversation]`
    section (`pipeline.config`) does not load the whole pipeline."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'appliance.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(f"appliance.pipeline.{home}"), name)
