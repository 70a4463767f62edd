"""The arbiter assembled from the configuration, its decisions and conflicts published
as events."""

from __future__ import annotations

import socket

from appliance import events as ev
from appliance.config import AppConfig
from appliance.rooms.arbiter import Decision, RoomArbiter
from appliance.rooms.claims import Message


def box_name(config: AppConfig) -> str:
    return (config.rooms.name or config.web.device_name or socket.gethostname().split(".")[0]
            or "appliance")  # fmt: skip


def room_arbiter(config: AppConfig, bus: ev.EventBus) -> RoomArbiter:
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

    return RoomArbiter(
        box_name(config), group=rooms.group, port=rooms.port, window_ms=rooms.window_ms,
        interface=rooms.interface or "0.0.0.0", on_decision=decided, on_conflict=conflict,
    )  # fmt: skip
