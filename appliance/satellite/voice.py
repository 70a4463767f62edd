"""The voice-assistant part of the native API in local mode: Home Assistant's
announcements played here, and its questions about the wake word answered. The
appliance still hears and answers requests itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aioesphomeapi import api_pb2
from google.protobuf.message import Message

from appliance import events as ev
from appliance.satellite.announce import Announcer
from appliance.satellite.assist import HomeAssistantPipeline
from appliance.satellite.assist import Subscriber as Peer

_LOGGER = logging.getLogger(__name__)
_TIMER_STATES = {0: "started", 1: "updated", 2: "cancelled", 3: "finished"}
VOICE_ASSISTANT, API_AUDIO, TIMERS, ANNOUNCE, START_CONVERSATION = (
    1 << 0, 1 << 2, 1 << 3, 1 << 4, 1 << 5
)  # fmt: skip
"""aioesphomeapi's VoiceAssistantFeature flags this satellite can honour now."""


class VoiceAssistant:
    def __init__(
        self,
        announcer: Announcer,
        wake_phrase: str,
        on_change: Callable[[], None],
        assist: HomeAssistantPipeline | None = None,
    ) -> None:
        self.announcer = announcer
        self.wake_phrase = wake_phrase
        self.wake_id = wake_phrase.lower().replace(" ", "_")
        self.assist = assist
        """Home Assistant's pipeline answering requests (mode "home_assistant")."""
        answers_there = API_AUDIO | TIMERS | START_CONVERSATION
        self.feature_flags = VOICE_ASSISTANT | ANNOUNCE | (answers_there if assist else 0)
        self.playing = 0
        """Announcements and media playing now."""
        self._on_change = on_change
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, peer: Peer, message: Message) -> bool:
        """Take a voice-assistant message; False when it is none."""
        if self.assist is not None and self.assist.message(peer, message):
            pass
        elif isinstance(message, api_pb2.SubscribeVoiceAssistantRequest):
            _LOGGER.info(
                "Home Assistant %s the voice assistant (%s)",
                "subscribed to" if message.subscribe else "unsubscribed from",
                "it answers requests"
                if self.assist
                else "local mode: the appliance answers requests itself",
            )
            if self.assist is not None:
                self.assist.subscribed(peer, message)
        elif isinstance(message, api_pb2.VoiceAssistantConfigurationRequest):
            wake = api_pb2.VoiceAssistantWakeWord(
                id=self.wake_id, wake_word=self.wake_phrase.title(), trained_languages=["en"]
            )
            peer.send(
                api_pb2.VoiceAssistantConfigurationResponse(
                    available_wake_words=[wake],
                    active_wake_words=[self.wake_id],
                    max_active_wake_words=1,
                )
            )
        elif isinstance(message, api_pb2.VoiceAssistantSetConfiguration):
            chosen = list(message.active_wake_words)
            if chosen and chosen != [self.wake_id]:
                _LOGGER.warning(
                    "Home Assistant chose the wake words %s; this appliance has one: %s",
                    chosen, self.wake_id,
                )  # fmt: skip
        elif isinstance(message, api_pb2.VoiceAssistantTimerEventResponse):
            self._timer(message)
        elif isinstance(message, api_pb2.VoiceAssistantAnnounceRequest):
            if message.start_conversation and self.assist is None:
                _LOGGER.warning(
                    "Home Assistant asked to start a conversation after its announcement; "
                    "in local mode the announcement alone is played"
                )
            self._start(self._announce(peer, message), "announce")
        else:
            return False
        return True

    def _timer(self, message: api_pb2.VoiceAssistantTimerEventResponse) -> None:
        """A timer Home Assistant runs for this satellite: an event, and when it is
        finished, said aloud with the timer's chime."""
        state = _TIMER_STATES.get(message.event_type, "updated")
        pipeline = self.announcer.pipeline
        pipeline.bus.publish(
            ev.RemoteTimer(
                turn=0,
                stream_time=0.0,
                timer_id=message.timer_id,
                name=message.name,
                state=state,
                seconds=message.total_seconds,
                seconds_left=message.seconds_left,
                active=message.is_active,
            )
        )
        if state == "finished":
            name = f"{message.name} timer" if message.name else "timer"
            self._start(pipeline.say(f"Your {name} is done.", cue="timer"), "timer")

    def gone(self, peer: Peer) -> None:
        """A connection closed."""
        if self.assist is not None:
            self.assist.gone(peer)

    def play_url(self, peer: Peer, url: str) -> None:
        """Media Home Assistant's media player sends: played like an announcement."""
        self._start(self._play(peer, url), "media")

    async def _announce(self, peer: Peer, message: api_pb2.VoiceAssistantAnnounceRequest) -> None:
        played = await self._playing(
            self.announcer.announce(
                message.media_id, message.text, message.preannounce_media_id, peer.host
            )
        )
        peer.send(api_pb2.VoiceAssistantAnnounceFinished(success=played))
        asks = played and message.start_conversation and self.assist is not None
        # Home Assistant asked something: the answer is heard without the wake word and
        # goes to its pipeline, as after a wake word.
        if asks and not self.announcer.pipeline.listen_now(by="home_assistant"):
            _LOGGER.warning("Home Assistant's question cannot be answered: the microphone "
                            "is muted or not being listened to")  # fmt: skip

    async def _play(self, peer: Peer, url: str) -> None:
        await self._playing(self.announcer.announce(url, "", "", peer.host))

    async def _playing(self, playing: Awaitable[bool]) -> bool:
        self.playing += 1
        self._on_change()
        try:
            return await playing
        finally:
            self.playing -= 1
            self._on_change()

    def _start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=f"satellite-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("a Home Assistant announcement failed", exc_info=task.exception())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
