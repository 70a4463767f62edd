"""The appliance on MQTT: pipeline events become retained state topics, and messages on
`<base>/command/<name>` become pipeline calls.

Commands (payload = UTF-8 text):

- `say`: speak the payload (`pipeline.say`).
- `ask`: answer the payload as a typed request (`pipeline.ask`); the result is published
  on `<base>/ask/result`.
- `mute`: ON / OFF (also true/false, 1/0) → `pipeline.set_muted(by="mqtt")`.
- `listen`: any payload (Home Assistant's button sends PRESS) → `pipeline.listen_now`.
- `look` (only with a camera): an optional question ("read this", "is the door open?";
  PRESS or empty = read) → `VisionService.look`; the answer is spoken and published on
  `<base>/look/result`.

A payload that is not one of these (not UTF-8, empty, too long, an unknown command or
value) is logged and answered on `<base>/error`; nothing else happens.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from appliance import events as ev
from appliance.mqtt.discovery import Topics, discovery_messages
from appliance.mqtt.link import DirectPublish, MqttLink
from appliance.sections.mqtt import MqttConfig
from appliance.vision.intents import look_kind

if TYPE_CHECKING:
    from appliance.vision.service import VisionService

_LOGGER = logging.getLogger(__name__)

MAX_TEXT = 1000
"""Longest text accepted by say and ask (characters)."""
_TRUE = {"on", "true", "1", "yes"}
_FALSE = {"off", "false", "0", "no"}


class PipelineControl(Protocol):
    """What the bridge needs of the pipeline (`appliance.pipeline.Pipeline` has it)."""

    bus: ev.EventBus

    async def say(self, text: str, *, cue: str | None = None) -> None: ...

    def set_muted(self, muted: bool, *, by: str) -> None: ...

    def listen_now(self, *, by: str) -> bool: ...

    async def ask(self, text: str) -> Any: ...


class CommandError(ValueError):
    """A command payload that cannot be carried out; the message says why."""


class MqttBridge:
    def __init__(
        self,
        pipeline: PipelineControl,
        link: MqttLink,
        config: MqttConfig,
        *,
        vision: VisionService | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.link = link
        self.config = config
        self.vision = vision
        self.topics = Topics(config.base)
        self._timers: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ask_lock = asyncio.Lock()
        self._looking: asyncio.Task[None] | None = None
        self._undo: list[Callable[[], None]] = []

    def start(self) -> None:
        self._undo.append(self.pipeline.bus.subscribe(self._on_event))
        self._undo.append(self.link.subscribe(self.topics.command("+"), self._on_command))
        self._undo.append(
            self.link.subscribe(f"{self.config.discovery_prefix}/status", self._on_ha_status)
        )
        self.link.on_connect(self._announce)
        self._publish(self.topics.muted, _on_off(bool(getattr(self.pipeline, "muted", False))))

    async def close(self) -> None:
        for undo in self._undo:
            undo()
        self._undo.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _publish(self, topic: str, payload: str | dict[str, Any], *, retain: bool = True) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        self.link.publish(topic, text, retain=retain)

    # ---- Home Assistant discovery ----------------------------------------------------

    async def _announce(self, publish: DirectPublish) -> None:
        """On every connect: discovery configs (or their removal), and no transcript left
        retained on the broker when transcripts are off."""
        for topic, payload in discovery_messages(self.config, vision=self.vision is not None):
            await publish(topic, payload, True)
        if not self.config.publish_transcripts:
            await publish(self.topics.transcript, "", True)
            await publish(self.topics.reply, "", True)

    def _on_ha_status(self, _topic: str, payload: bytes) -> None:
        # Home Assistant restarted: its birth message asks for the configs again.
        if payload.strip() == b"online" and self.link.connected:
            vision = self.vision is not None
            for topic, config in discovery_messages(self.config, vision=vision):
                self.link.publish(topic, config, retain=True)

    # ---- events → state topics -------------------------------------------------------

    def _on_event(self, event: ev.Event) -> None:
        kind = event.type
        if kind == "state":
            self._publish(self.topics.state, event.state)  # type: ignore[attr-defined]
        elif kind == "muted":
            self._publish(self.topics.muted, _on_off(bool(event.muted)))  # type: ignore[attr-defined]
        elif kind == "transcript" and self.config.publish_transcripts:
            self._publish(self.topics.transcript, event.text)  # type: ignore[attr-defined]
        elif kind == "reply" and self.config.publish_transcripts:
            self._publish(self.topics.reply, event.text)  # type: ignore[attr-defined]
        elif kind == "timer":
            self._on_timer(ev.to_dict(event))
        elif kind == "action":
            data = ev.to_dict(event)
            data.pop("type", None)
            data.pop("stream_time", None)
            self._publish(self.topics.last_action, data)
        elif kind == "error" and getattr(event, "stage", "") != "mqtt":
            data = ev.to_dict(event)
            self._publish(
                self.topics.error,
                {k: data.get(k) for k in ("stage", "code", "message", "turn", "wall_time")},
                retain=False,
            )

    def _on_timer(self, data: dict[str, Any]) -> None:
        timer_id = str(data.get("timer_id", ""))
        ends_at = _iso(data.get("ends_at"))
        entry = {
            "timer_id": data.get("timer_id"),
            "name": data.get("name", ""),
            "seconds": data.get("seconds"),
            "ends_at": ends_at,
        }
        state = data.get("state")
        if state in ("set", "restored", "resumed", "changed"):  # running (again)
            self._timers[timer_id] = {**entry, "paused": False}
        elif state == "paused":  # kept, but it ends at no time while paused
            self._timers[timer_id] = {**entry, "ends_at": None, "paused": True}
        else:
            self._timers.pop(timer_id, None)
        running = sorted(
            (t for t in self._timers.values() if not t["paused"]), key=lambda t: t["ends_at"] or ""
        )
        active = running + [t for t in self._timers.values() if t["paused"]]
        self._publish(self.topics.timer_event, {**entry, "state": state}, retain=False)
        self._publish(
            self.topics.timers,
            {
                "active": len(active),
                "next_ends_at": running[0]["ends_at"] if running else None,
                "next_name": running[0]["name"] if running else None,
                "timers": active,
            },
        )

    # ---- commands → pipeline ---------------------------------------------------------

    def _on_command(self, topic: str, payload: bytes) -> None:
        name = topic.rsplit("/", 1)[-1]
        try:
            self._command(name, payload)
        except CommandError as err:
            shown = payload[:80].decode("utf-8", "replace")
            _LOGGER.warning("MQTT command on %s rejected: %s (payload %r)", topic, err, shown)
            self._publish(
                self.topics.error,
                {"stage": "mqtt", "code": "bad_command", "topic": topic, "message": str(err)},
                retain=False,
            )

    def _command(self, name: str, payload: bytes) -> None:
        if name == "say":
            self._spawn(self.pipeline.say(_text(payload, "say")), "say")
        elif name == "ask":
            self._spawn(self._ask(_text(payload, "ask")), "ask")
        elif name == "mute":
            self.pipeline.set_muted(_flag(payload), by="mqtt")
        elif name == "listen":
            if not self.pipeline.listen_now(by="mqtt"):
                raise CommandError("not listening now: the appliance is muted or not running")
        elif name == "look":
            self._look(payload)
        else:
            raise CommandError(f"unknown command {name!r}: use say, ask, mute, listen or look")

    def _look(self, payload: bytes) -> None:
        if self.vision is None:
            raise CommandError("look: vision is off (no camera configured or found)")
        question = "" if payload.strip().upper() in (b"", b"PRESS") else _text(payload, "look")
        if self._looking is not None and not self._looking.done():
            raise CommandError("look: a look is already running; send it again when it is done")
        self._looking = self._spawn(self._look_and_say(self.vision, question), "look")

    async def _look_and_say(self, vision: VisionService, question: str) -> None:
        kind = look_kind(question)
        answer = await vision.look("describe" if kind == "describe" else "read", question=question)
        self._publish(
            self.topics.look_result,
            {
                "question": question,
                "kind": answer.kind,
                "text": answer.text,
                "backend": answer.backend,
                "lines": list(answer.lines),
                "problem": answer.problem,
                "seconds": answer.seconds,
            },
            retain=False,
        )
        await self.pipeline.say(answer.text)

    async def _ask(self, text: str) -> None:
        async with self._ask_lock:  # one typed request at a time
            result = await self.pipeline.ask(text)
        self._publish(
            self.topics.ask_result,
            {
                "text": text,
                "reply": getattr(result, "reply", ""),
                "outcome": getattr(result, "outcome", ""),
            },
            retain=False,
        )

    def _spawn(self, coro: Any, what: str) -> asyncio.Task[None]:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception as err:
                _LOGGER.exception("MQTT command %s failed", what)
                self._publish(
                    self.topics.error,
                    {"stage": "mqtt", "code": "command_failed", "message": f"{what}: {err}"},
                    retain=False,
                )

        task = asyncio.get_running_loop().create_task(guarded(), name=f"mqtt-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _text(payload: bytes, command: str) -> str:
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError(f"{command}: the payload is not UTF-8 text") from None
    if not text:
        raise CommandError(f"{command}: the payload is empty; send the text to {command}")
    if len(text) > MAX_TEXT:
        raise CommandError(f"{command}: the text is {len(text)} characters; at most {MAX_TEXT}")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        raise CommandError(f"{command}: the text contains control characters")
    return text


def _flag(payload: bytes) -> bool:
    word = payload.decode("utf-8", "replace").strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise CommandError(f"mute: expected ON or OFF, got {word[:40]!r}")


def _on_off(value: bool) -> str:
    return "ON" if value else "OFF"


def _iso(value: Any) -> str | None:
    """A timer's end as ISO 8601 (what Home Assistant's timestamp sensor reads)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="seconds")
    if isinstance(value, str) and value:
        return value
    return None
