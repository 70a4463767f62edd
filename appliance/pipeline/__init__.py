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
  conversation.
"""

from appliance.pipeline.core import Pipeline
from appliance.pipeline.stages import Stage
from appliance.pipeline.types import APOLOGY, Engines, PipelineSettings, State, TurnResult

__all__ = ["APOLOGY", "Engines", "Pipeline", "PipelineSettings", "Stage", "State", "TurnResult"]
