"""Timers: spoken lengths, limits, and surviving a restart on the same SQLite file."""

from __future__ import annotations

import asyncio
import time

from appliance import events as ev
from appliance.actions.app import Actions
from appliance.actions.config import ActionsConfig
from appliance.actions.timers import Timers, TimerStore
from tests.actions_fakes import ControlsSpy
from tests.fakes import Recorder


def make(tmp_path, controls: ControlsSpy | None = None) -> tuple[Actions, Recorder]:
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    actions = Actions([], ActionsConfig(), bus, tmp_path)
    if controls is not None:
        actions._pipeline = controls  # what attach() does, without GPIO or an event loop
    return actions, recorder


def test_zero_and_ten_year_timers_are_refused_with_a_clear_answer(tmp_path):
    actions, recorder = make(tmp_path)

    async def main():
        async with actions:
            zero = await actions.fast_path.handle("Set a timer for zero minutes.", 1)
            decade = await actions.fast_path.handle("Set a timer for ten years.", 2)
            return zero, decade, actions.timers.running()

    zero, decade, running = asyncio.run(main())
    assert zero.reply == "A timer needs a length of at least one second."
    assert decade.reply == "I can only set timers of up to twenty four hours; that is too long."
    assert running == [] and recorder.of("timer") == []
    assert [(a.tool, a.ok) for a in recorder.of("action")] == [("timer_set", False)] * 2


def test_set_list_remaining_and_cancel(tmp_path):
    actions, recorder = make(tmp_path)

    async def main():
        async with actions:
            said = [
                (await actions.fast_path.handle(text, turn)).reply
                for turn, text in enumerate([
                    "Set a timer for ten minutes.",
                    "Set a pasta timer for an hour and a half.",
                    "What timers do I have?",
                    "How long is left on the pasta timer?",
                    "Cancel the timer.",
                    "Cancel the pasta timer.",
                    "Cancel the ten minute timer.",
                    "Cancel the timer.",
                ], 1)
            ]  # fmt: skip
            return said

    said = asyncio.run(main())
    assert said[0] == "OK, ten minutes, starting now."
    assert said[1] == "OK, pasta timer for one hour and thirty minutes, starting now."
    assert said[2].startswith("You have two timers: the ten minute timer with")
    assert "the pasta timer with one hour and" in said[2]
    assert said[3].endswith("left on the pasta timer.")
    assert said[4] == "Which timer do you want to cancel: the ten minute timer or the pasta timer?"
    assert said[5] == "Cancelled the pasta timer."
    assert said[6] == "Cancelled the ten minute timer."
    assert said[7] == "You have no timer."
    timers = recorder.of("timer")
    assert [(t.name, t.state) for t in timers] == [
        ("", "set"), ("pasta", "set"), ("pasta", "cancelled"), ("", "cancelled"),
    ]  # fmt: skip
    assert timers[0].seconds == 600 and abs(timers[0].ends_at - time.time() - 600) < 5


def test_a_timer_survives_a_restart_and_still_fires(tmp_path):
    """Set with one set of objects, closed (the service stops), reopened on the same file."""
    first, _ = make(tmp_path)

    async def set_it():
        async with first:
            reply = await first.fast_path.handle("Set a timer for two seconds.", 1)
            assert reply.reply == "OK, two seconds, starting now."

    asyncio.run(set_it())
    controls = ControlsSpy()
    second, recorder = make(tmp_path, controls)

    async def restart():
        async with second:
            assert len(second.timers.running()) == 1
            for _ in range(60):
                if controls.said:
                    break
                await asyncio.sleep(0.1)

    asyncio.run(restart())
    assert controls.said == [("Your two second timer is done.", "timer")]
    # Re-armed at start, published as "restored" (MQTT's timer sensors show it again).
    restored, fired = recorder.of("timer")
    assert (restored.state, restored.seconds, restored.name) == ("restored", 2, "")
    assert restored.ends_at == fired.ends_at and restored.timer_id == fired.timer_id
    assert fired.state == "fired" and fired.seconds == 2
    assert TimerStore(tmp_path / "timers.sqlite3").running() == []


def test_a_timer_that_ended_while_off_is_announced_at_start(tmp_path):
    store = TimerStore(tmp_path / "timers.sqlite3")
    store.add("tea", 60, time.time() - 660)  # ended ten minutes ago
    store.close()
    controls = ControlsSpy()
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)

    async def main():
        timers = Timers(TimerStore(tmp_path / "timers.sqlite3"), bus, controls.say)
        await timers.start()
        for _ in range(20):
            if controls.said:
                break
            await asyncio.sleep(0.05)
        await timers.close()

    asyncio.run(main())
    assert controls.said == [("Your tea timer ended while I was off, ten minutes ago.", None)]
    assert [t.state for t in recorder.of("timer")] == ["fired"]  # not "restored" first


def test_a_cancelled_timer_does_not_fire(tmp_path):
    controls = ControlsSpy()
    bus = ev.EventBus()

    async def main():
        timers = Timers(TimerStore(tmp_path / "t.sqlite3"), bus, controls.say)
        record = await timers.set(1.0)
        assert await timers.cancel(record)
        await asyncio.sleep(1.3)
        await timers.close()
        return timers.store.running()

    assert asyncio.run(main()) == [] and controls.said == []
