"""One turn, spoken or typed, once its text is known: the request handlers, else the
language model; the reply spoken; a failed stage reported and apologised for.

`TurnRunner.run` is the one frame both kinds of turn go through, so that every turn ends
with one `turn_end` event and its timings, whatever happened inside it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from appliance import events as ev
from appliance.audio.earcons import earcon
from appliance.errors import ActionError, AudioOutputError, PipelineError
from appliance.handlers import Handled, TextHandler
from appliance.pipeline.reply import Speaker
from appliance.pipeline.stages import Stage
from appliance.pipeline.types import APOLOGY, State, TurnResult
from appliance.understanding.followup import plausible_answer

_LOGGER = logging.getLogger(__name__)

Publish = Callable[..., None]


class TurnRunner:
    def __init__(
        self,
        speaker: Speaker,
        handlers: list[TextHandler],
        publish: Publish,
        set_state: Callable[[State], None],
    ) -> None:
        self.speaker = speaker
        self.handlers = handlers
        """Tried in order on every request before the LLM (see `appliance.handlers`);
        the pipeline's own list, which features add themselves to."""
        self._publish = publish
        self._set_state = set_state

    async def run(
        self, result: TurnResult, started: float, body: Callable[[], Awaitable[None]]
    ) -> TurnResult:
        """Run a turn's `body`; a failure is reported and apologised for, never raised
        (a bug in an engine must not end the session). Ends with the `turn_end` event."""
        try:
            await body()
        except asyncio.CancelledError:
            raise
        except PipelineError as err:
            await self.fail(result, err)
        except Exception as err:
            _LOGGER.exception("turn %d failed", result.turn)
            await self.fail(result, PipelineError(f"unexpected error: {err}"))
        result.timings["turn"] = time.monotonic() - started
        self._publish(
            ev.TurnEnd,
            turn=result.turn,
            outcome=result.outcome,
            timings={k: round(v, 4) for k, v in result.timings.items()},
        )
        return result

    async def respond(
        self, result: TurnResult, text: str, speech_end: float, answering: str | None = None
    ) -> None:
        """Answer `text`: a handler's reply, or the LLM's. Heard in a follow-up window
        after the reply `answering`, text no handler took and that does not answer it is
        the room talking: ignored, unless conversation.follow_up is "always"."""
        handled = await self._try_handlers(result, text)
        if (
            handled is None
            and answering is not None
            and self.speaker.settings.conversation.follow_up != "always"
            and not plausible_answer(text, answering)
        ):
            _LOGGER.info("turn %d: %r does not answer %r; ignored", result.turn, text, answering)
            result.outcome = "ignored"
            return
        async with self.speaker.voice:
            await self.speaker.reply(result, text, speech_end, handled)

    async def _try_handlers(self, result: TurnResult, text: str) -> Handled | None:
        result.handling = True
        try:
            handled = await self._first_handler(result, text)
        finally:
            result.handling = False
        result.committed = result.committed or (handled is not None and handled.acted)
        return handled

    async def _first_handler(self, result: TurnResult, text: str) -> Handled | None:
        started = time.monotonic()
        for handler in list(self.handlers):
            try:
                handled = await handler.handle(text, result.turn)
            except asyncio.CancelledError:
                raise
            except PipelineError:
                raise
            except Exception as err:
                _LOGGER.exception("handler %r failed on %r", handler, text)
                raise ActionError(f"could not carry out the request: {err}") from err
            if handled is not None:
                result.handled = handled
                result.timings["handler"] = time.monotonic() - started
                self._publish(
                    ev.Handled,
                    turn=result.turn,
                    handler=handled.handler,
                    action=handled.action,
                    seconds=round(result.timings["handler"], 3),
                )
                return handled
        return None

    async def fail(self, result: TurnResult, err: PipelineError) -> None:
        """Report a failed stage, say sorry, and leave the session ready for the next turn."""
        _LOGGER.error("turn %d: %s failed: %s", result.turn, err.stage, err)
        result.outcome = "error"
        result.committed = True  # the error is reported: the turn is over
        result.errors.append(f"{err.stage}: {err}")
        self._set_state(State.ERROR)
        self._publish(ev.Error, turn=result.turn, stage=err.stage, code=err.code, message=str(err))
        if isinstance(err, AudioOutputError):
            return
        speaker = self.speaker
        tts, sink = speaker.engines.tts, speaker.sink
        async with speaker.voice:
            await self.cue("error")
            try:
                audio = await speaker.stages[Stage.TTS].run(tts.synthesize, APOLOGY)
                await sink.play(audio, tts.sample_rate)
                await sink.drain()
            except Exception as apology_error:
                _LOGGER.error("could not speak the apology either: %s", apology_error)

    async def cue(self, kind: str) -> None:
        """Queue an earcon; the speaker plays it without holding anything up."""
        speaker = self.speaker
        if speaker.settings.earcons:
            rate = speaker.engines.tts.sample_rate
            with contextlib.suppress(Exception):  # a cue never fails a turn
                await speaker.sink.play(earcon(kind, rate), rate)
