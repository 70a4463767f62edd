"""The service rides out a microphone that goes away and comes back."""

from __future__ import annotations

import asyncio

import numpy as np

from appliance.audio.sources import ArraySource
from appliance.errors import AudioDeviceError
from appliance.service import serve
from tests.fakes import make_pipeline, request


class FlakyMicrophone:
    """Fails to open once (unplugged), then delivers a request, then fails mid-stream."""

    def __init__(self) -> None:
        self.opened = 0

    def __call__(self):
        self.opened += 1
        if self.opened == 1:
            raise AudioDeviceError("no microphone found")
        return _Unplugged(request()) if self.opened == 2 else ArraySource(request())


class _Unplugged(ArraySource):
    async def chunks(self):
        async for chunk in super().chunks():
            yield chunk
        raise AudioDeviceError("microphone stopped delivering audio")


def test_a_lost_microphone_is_reopened_and_the_session_goes_on():
    pipeline, rec, *_ = make_pipeline(["first", "second"], ["One.", "Two."])
    microphone = FlakyMicrophone()

    async def main():
        two_turns = asyncio.Event()
        pipeline.bus.subscribe(lambda e: len(rec.of("turn_end")) >= 2 and two_turns.set())
        async with pipeline:
            task = asyncio.create_task(serve(pipeline, microphone, retry_seconds=0.01))
            await asyncio.wait_for(two_turns.wait(), timeout=30)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    asyncio.run(main())
    assert [r.reply for r in pipeline.results] == ["One.", "Two."]
    errors = rec.of("error")
    assert [e.stage for e in errors] == ["input", "input"]
    assert "no microphone" in errors[0].message and "stopped" in errors[1].message
    assert microphone.opened == 3
    assert np.isfinite(rec.of("turn_end")[0].wall_time)
