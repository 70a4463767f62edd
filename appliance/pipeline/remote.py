"""A turn answered by another assistant (Home Assistant's pipeline, appliance/satellite):
the request's audio goes there as it is heard, and the answer's audio comes back.

The request is still captured here, so that when the other assistant cannot answer
(gone, refusing, failing before it understood anything) the same audio is answered
locally, and an event says so. Once it has understood the request it may have acted:
then nothing is run again here, and whatever it said is said."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from appliance import events as ev
from appliance.audio.vad import SpeechEnded
from appliance.errors import PipelineError
from appliance.pipeline.types import State, TurnResult

if TYPE_CHECKING:
    from appliance.pipeline.core import Pipeline

_LOGGER = logging.getLogger(__name__)


class RemoteUnavailable(PipelineError):
    """The other assistant cannot answer this turn, and has done nothing for it."""

    code = "remote_unavailable"
    stage = "remote"


@dataclass
class RemoteAnswer:
    transcript: str
    """What the other assistant heard."""
    reply: str
    """What it answered, as text ("" when it said nothing in words)."""
    audio: list[tuple[np.ndarray, int]] = field(default_factory=list)
    """Its spoken answer (int16 mono clips and their rates); empty: say `reply` here."""
    continue_conversation: bool = False
    """It expects an answer: listen again without the wake word."""


NO_ANSWER = "{name} gave no answer."
"""Said when the other assistant took the request but answered with neither words nor
audio: it may have acted, so nothing is run here, but the person is not left with
silence."""


class RemoteAssistant(Protocol):
    name: str
    shown: str
    """Its name as said to the person ("Home Assistant")."""

    def begin(self, turn: int, wake_word: str) -> bool:
        """Take this turn (True), or leave it to the appliance (not connected, …)."""
        ...

    def audio(self, samples: np.ndarray) -> None:
        """A 16 kHz int16 chunk of the request, from the wake word on."""
        ...

    async def finish(self, turn: int) -> RemoteAnswer:
        """The request's audio is over: its answer. Raises RemoteUnavailable when the
        other assistant did nothing for it."""
        ...

    def abort(self, turn: int) -> None:
        """Drop the turn (no speech came, or it was cancelled)."""
        ...


async def remote_turn(
    pipeline: Pipeline,
    remote: RemoteAssistant,
    result: TurnResult,
    speech: SpeechEnded,
    speech_end: float,
    answering: str | None,
) -> TurnResult:
    """Wait for the other assistant's answer and play it; on RemoteUnavailable the turn
    is answered here, from the same audio."""
    pipeline._set_state(State.THINKING)
    try:
        answer = await remote.finish(result.turn)
    except asyncio.CancelledError:
        remote.abort(result.turn)
        raise
    except RemoteUnavailable as err:
        _LOGGER.warning("turn %d: %s cannot answer (%s); answering here", result.turn,
                        remote.name, err)  # fmt: skip
        pipeline._publish(ev.RemoteFallback, turn=result.turn, remote=remote.name, reason=str(err))
        return await pipeline._spoken_turn(result, speech, speech_end, answering)
    pipeline.results.append(result)
    result.timings["remote"] = time.monotonic() - speech_end

    async def body() -> None:
        result.transcript = answer.transcript
        result.remote_continues = answer.continue_conversation
        pipeline._publish(ev.Transcript, turn=result.turn, text=answer.transcript,
                          stt_seconds=0.0)  # fmt: skip
        if answer.audio:
            result.committed = True
            played = await pipeline.speaker.play_clips(
                answer.audio, result.turn, shown=answer.reply, as_reply=True
            )
            result.reply = answer.reply
            if not played:
                result.outcome = "interrupted"
        elif answer.reply:
            await pipeline.say(answer.reply)
            result.reply = answer.reply
        else:  # it understood (and may have acted) but gave no words: never silence
            result.outcome = "no_reply"
            await pipeline.say(NO_ANSWER.format(name=remote.shown))

    return await pipeline.turns.run(result, speech_end, body)
