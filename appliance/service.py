"""The long-running service loop: keep listening, and ride out a microphone that goes
away (a USB unplug) by waiting for it to come back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from appliance import events as ev
from appliance.audio.sources import AudioSource
from appliance.errors import AudioDeviceError
from appliance.pipeline import Pipeline

_LOGGER = logging.getLogger(__name__)


async def serve(
    pipeline: Pipeline,
    open_source: Callable[[], AudioSource],
    *,
    retry_seconds: float = 2.0,
    max_failures: int | None = None,
) -> None:
    """Run the pipeline on a live source until cancelled. When the source fails (its device
    disappears, or cannot be opened), publish an `error` event, wait, and open it again;
    the conversation and the loaded models are kept."""
    failures = 0
    while True:
        try:
            await pipeline.run(open_source())
            failures = 0
        except AudioDeviceError as err:
            failures += 1
            _LOGGER.warning("microphone lost (%s); retrying in %.0f s", err, retry_seconds)
            pipeline.bus.publish(
                ev.Error(turn=0, stream_time=0.0, stage="input", code=err.code, message=str(err))
            )
            if max_failures is not None and failures >= max_failures:
                raise
            await asyncio.sleep(retry_seconds)
