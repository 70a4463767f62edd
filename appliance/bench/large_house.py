"""The command handlers' own time on a large house (`appliance bench --only
understanding`): 500 devices in 50 rooms, no speech, no language model."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from appliance import events as ev
from appliance.sections.devices import ActionsConfig, DeviceConfig

HANDLER_TARGET_MS = 20.0
LARGE_HOUSE = tuple(
    DeviceConfig(f"lamp {i}", "lamp", (), f"room {(i - 1) % 50 + 1}", mqtt={"command_topic": ""})
    for i in range(1, 501)
)
"""500 devices in 50 rooms, for the handler's time alone (backends in memory)."""
LARGE_HOUSE_REQUESTS = (
    "Turn on lamp 250.",
    "Turn off the lights in room 7.",
    "Set lamp 42 to 30 percent.",
    "Is lamp 499 on?",
    "Turn on the porridge lamp.",
    "Set a timer for ten minutes.",
    "Cancel tiger.",
    "What time is it?",
    "What is the capital of France?",
    "Tell me a joke about a lamp in room twelve.",
    "Turn on the garage light.",
    "I turned off the light yesterday.",
)


async def handler_alone(
    devices: Sequence[DeviceConfig], requests: Sequence[str], repeats: int = 3
) -> dict[str, Any]:
    """The command handlers' own time (no speech, no language model) on a house of
    `devices` with in-memory backends: the median of `repeats` runs of each request."""
    from appliance.actions.devices import MemoryBackend
    from appliance.house import Actions

    def memory(_name: str, _table: dict[str, Any]) -> MemoryBackend:
        return MemoryBackend()

    per_request: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        actions = Actions(devices, ActionsConfig(), ev.EventBus(), Path(tmp), make_mqtt=memory)
        async with actions:
            setup_s = time.monotonic() - t0
            for turn, text in enumerate(requests, 1):
                times = []
                for _ in range(repeats):
                    for handler in actions.handlers:
                        if hasattr(handler, "forget_pending"):
                            handler.forget_pending()
                    started = time.perf_counter()
                    for handler in actions.handlers:
                        if await handler.handle(text, turn) is not None:
                            break
                    times.append(time.perf_counter() - started)
                per_request[text] = round(statistics.median(times) * 1000, 2)
    values = list(per_request.values())
    return {
        "devices": len(devices),
        "rooms": len({d.room for d in devices}),
        "setup_s": round(setup_s, 2),
        "median_ms": round(statistics.median(values), 2) if values else None,
        "max_ms": round(max(values), 2) if values else None,
        "target_ms": HANDLER_TARGET_MS,
        "per_request_ms": per_request,
    }
