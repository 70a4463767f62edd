"""Home Assistant's voice pipeline answering the appliance's requests
(`satellite.mode = "home_assistant"`): the `RemoteAssistant` the pipeline streams a
request to.

After the wake word the appliance asks the subscribed Home Assistant to start a run
(VoiceAssistantRequest); Home Assistant answers with port 0 (the audio goes over the API
connection), and the request's audio follows as VoiceAssistantAudio until the appliance's
own end of turn, then an end marker. Home Assistant's events say what it heard
(STT_END), what it will say (TTS_START) and where the spoken answer is (TTS_END), which
is fetched only from that Home Assistant's address.

Home Assistant gone, refusing, silent or failing before its intent stage: the turn falls
back to the appliance (`RemoteUnavailable`). After its intent stage it may have acted:
its words are said, in our voice if its audio cannot be had.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from aioesphomeapi import api_pb2
from google.protobuf.message import Message

from appliance.pipeline.remote import RemoteAnswer, RemoteUnavailable
from appliance.satellite.announce import AnnouncementError, decode, fetch

_LOGGER = logging.getLogger(__name__)
API_AUDIO = 1 << 2
"""The subscription flag of a client that takes the audio over the API connection."""
(_ERROR, _RUN_END, _STT_END, _INTENT_START, _INTENT_END, _TTS_START, _TTS_END) = (
    0, 2, 4, 5, 6, 7, 8
)  # fmt: skip
_MAX_WAITING_CHUNKS = 100
"""Audio kept while Home Assistant has not yet said where to send it (8 s)."""


class Subscriber(Protocol):
    """A connection subscribed to the voice assistant (see `VoiceAssistant.handle`)."""

    host: str
    peer: str

    def send(self, *messages: Message) -> None: ...


@dataclass
class _Run:
    turn: int
    connection: Subscriber
    started: asyncio.Future[bool]
    """Home Assistant's VoiceAssistantResponse: True when it takes the audio here."""
    waiting: list[bytes] = field(default_factory=list)
    events: asyncio.Queue[tuple[int, dict[str, str]] | None] = field(default_factory=asyncio.Queue)
    ended: bool = False


class HomeAssistantPipeline:
    name = "home_assistant"
    shown = "Home Assistant"

    def __init__(self, *, start_seconds: float = 3.0, answer_seconds: float = 30.0) -> None:
        self.start_seconds = start_seconds
        """How long Home Assistant may take to accept a run."""
        self.answer_seconds = answer_seconds
        """How long it may take to answer once the request is over."""
        self.subscriber: Subscriber | None = None
        self._run: _Run | None = None
        self._conversation_id = ""
        self._wake_phrases: dict[str, str] = {}

    # -- from the API connection -------------------------------------------------------

    def subscribed(self, connection: Subscriber, message: Message) -> None:
        wants = message.subscribe and message.flags & API_AUDIO  # type: ignore[attr-defined]
        if wants:
            self.subscriber = connection
        elif self.subscriber is connection:
            self.subscriber = None

    def gone(self, connection: Subscriber) -> None:
        if self.subscriber is connection:
            self.subscriber = None
        run = self._run
        if run is not None and run.connection is connection:
            if not run.started.done():
                run.started.set_result(False)
            run.events.put_nowait(None)

    def message(self, connection: Subscriber, message: Message) -> bool:
        run = self._run
        if isinstance(message, api_pb2.VoiceAssistantResponse):
            if run is not None and run.connection is connection and not run.started.done():
                taken = not message.error and message.port == 0
                if not message.error and message.port != 0:
                    _LOGGER.warning(
                        "Home Assistant wants the audio over UDP (port %d); this satellite "
                        "sends it over the API only", message.port,
                    )  # fmt: skip
                run.started.set_result(taken)
            return True
        if isinstance(message, api_pb2.VoiceAssistantEventResponse):
            if run is not None and run.connection is connection:
                data = {item.name: item.value for item in message.data}
                run.events.put_nowait((message.event_type, data))
            return True
        return False

    # -- RemoteAssistant ---------------------------------------------------------------

    def begin(self, turn: int, wake_word: str) -> bool:
        connection = self.subscriber
        if connection is None:
            return False
        if self._run is not None:
            self.abort(self._run.turn)
        loop = asyncio.get_running_loop()
        self._run = _Run(turn, connection, loop.create_future())
        pushed = ("button", "web", "mqtt", "api", "home_assistant")  # no wake word said
        phrase = "" if wake_word in pushed else wake_word.replace("_", " ")
        connection.send(
            api_pb2.VoiceAssistantRequest(
                start=True, conversation_id=self._conversation_id, wake_word_phrase=phrase
            )
        )
        return True

    def audio(self, samples: np.ndarray) -> None:
        run = self._run
        if run is None or run.ended:
            return
        data = np.asarray(samples, dtype=np.int16).tobytes()
        if run.started.done():
            if run.started.result():
                run.connection.send(api_pb2.VoiceAssistantAudio(data=data))
        elif len(run.waiting) < _MAX_WAITING_CHUNKS:
            run.waiting.append(data)

    async def finish(self, turn: int) -> RemoteAnswer:
        run = self._run
        if run is None or run.turn != turn:
            raise RemoteUnavailable("Home Assistant was not asked for this request")
        try:
            taken = await asyncio.wait_for(asyncio.shield(run.started), self.start_seconds)
        except TimeoutError:
            self.abort(turn)
            raise RemoteUnavailable(
                f"Home Assistant did not take the request within {self.start_seconds:.0f} s"
            ) from None
        if not taken:
            self._run = None
            raise RemoteUnavailable("Home Assistant refused the request or is gone")
        run.connection.send(*(api_pb2.VoiceAssistantAudio(data=d) for d in run.waiting))
        run.waiting.clear()
        run.connection.send(api_pb2.VoiceAssistantAudio(end=True))
        run.ended = True
        try:
            return await asyncio.wait_for(self._answer(run), self.answer_seconds)
        except TimeoutError:
            self.abort(turn)
            raise RemoteUnavailable(
                f"Home Assistant did not answer within {self.answer_seconds:.0f} s"
            ) from None
        finally:
            if self._run is run:
                self._run = None

    async def _answer(self, run: _Run) -> RemoteAnswer:
        heard = said = url = ""
        understood = continues = False
        while (event := await run.events.get()) is not None:
            kind, data = event
            if kind == _STT_END:
                heard = data.get("text", "")
            elif kind in (_INTENT_START, _INTENT_END):
                understood = True
                if kind == _INTENT_END:
                    self._conversation_id = data.get("conversation_id", self._conversation_id)
                    continues = data.get("continue_conversation") == "1"
            elif kind == _TTS_START:
                said = data.get("text", "")
            elif kind == _TTS_END:
                url = data.get("url", "")
            elif kind == _ERROR:
                reason = f"{data.get('code', 'error')}: {data.get('message', '')}"
                if not understood:
                    raise RemoteUnavailable(f"Home Assistant's pipeline failed ({reason})")
                _LOGGER.warning("Home Assistant's pipeline failed after its intent: %s", reason)
            elif kind == _RUN_END:
                break
        else:
            if not understood:
                raise RemoteUnavailable("Home Assistant went away during the request")
        if not understood and not said and not url:
            raise RemoteUnavailable("Home Assistant ended the run without answering")
        answer = RemoteAnswer(heard, said, continue_conversation=continues)
        if url:
            try:
                data = await asyncio.to_thread(fetch, url, run.connection.host)
                answer.audio = [decode(data, url)]
            except AnnouncementError as err:
                _LOGGER.warning("Home Assistant's spoken answer was not played (%s); its "
                                "words are said instead", err)  # fmt: skip
        return answer

    def abort(self, turn: int) -> None:
        run = self._run
        if run is None or run.turn != turn:
            return
        self._run = None
        if not run.started.done():
            run.started.set_result(False)
        run.connection.send(api_pb2.VoiceAssistantRequest(start=False))
