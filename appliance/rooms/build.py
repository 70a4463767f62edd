"""The arbiter assembled from the configuration, its decisions and conflicts published
as events."""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

from appliance import events as ev
from appliance.config import AppConfig
from appliance.rooms.arbiter import Decision, RoomArbiter
from appliance.rooms.claims import Message
from appliance.rooms.messengers import Messenger, Multicast, OverMqtt

if TYPE_CHECKING:
    from appliance.mqtt.link import MqttLink

_LOGGER = logging.getLogger(__name__)


def box_name(config: AppConfig) -> str:
    return (config.rooms.name or config.web.device_name or socket.gethostname().split(".")[0]
            or "appliance")  # fmt: skip


def room_arbiter(config: AppConfig, bus: ev.EventBus, link: MqttLink | None) -> RoomArbiter:
    """`link`: the MQTT link, for `rooms.via = "mqtt"` (None when MQTT is not running)."""
    rooms = config.rooms

    def decided(claim: Message, decision: Decision) -> None:
        bus.publish(ev.RoomDecision(
            turn=0, stream_time=0.0, wake_word=claim.wake, won=decision.won,
            winner=decision.winner, claims=decision.claims, level_db=claim.level_db,
            score=round(claim.score, 3), waited_ms=round(decision.waited_s * 1000, 1),
            early=decision.early,
        ))  # fmt: skip

    def conflict(problem: str) -> None:
        bus.publish(ev.RoomConflict(turn=0, stream_time=0.0, problem=problem))

    messenger: Messenger
    if rooms.via == "mqtt" and link is not None:
        messenger = OverMqtt(link, rooms.topic)
    else:
        if rooms.via == "mqtt":
            _LOGGER.warning("rooms.via is mqtt, but MQTT is not running in this command: "
                            "the boxes are reached over multicast instead")  # fmt: skip
        messenger = Multicast(rooms.group, rooms.port, rooms.interface or "0.0.0.0")
    return RoomArbiter(box_name(config), messenger, window_ms=rooms.window_ms,
                       on_decision=decided, on_conflict=conflict)  # fmt: skip
