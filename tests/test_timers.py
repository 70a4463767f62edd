"""Timers: spoken lengths, limits, surviving a restart on the same SQLite file, pausing,
resuming, lengthening and shortening."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from appliance import events as ev
from appliance.actions.builtin import register_builtin_tools
from appliance.actions.devices import DeviceDirectory
from appliance.actions.timers import Timers, TimerStore
from appliance.actions.tools import CallContext, ToolRegistry
from appliance.house import Actions
from appliance.sections.devices import ActionsConfig
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
            zero = await actions.intents.handle("Set a timer for zero minutes.", 1)
            decade = await actions.intents.handle("Set a timer for ten years.", 2)
            return zero, decade, actions.timers.running()

    zero, decade, running = asyncio.run(main())
    assert zero.reply == (
        "A timer needs a length. Say, for example, 'set a timer for ten minutes'."
    )
    assert decade.reply == "That's too long: the longest timer I can set is twenty four hours."
    assert running == [] and recorder.of("timer") == []
    assert [(a.tool, a.ok) for a in recorder.of("action")] == [("timer_set", False)] * 2


def test_set_list_remaining_and_cancel(tmp_path):
    actions, recorder = make(tmp_path)

    async def main():
        async with actions:
            said = [
                (await actions.intents.handle(text, turn)).reply
                for turn, text in enumerate([
                    "Set a timer for ten minutes.",
                    "Set a pasta timer for 90 minutes.",
                    "Timer status.",
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
            reply = await first.intents.handle("Set a timer for two seconds.", 1)
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


# ---- pause, resume, lengthen and shorten -----------------------------------------------


class Clock:
    """Wall-clock time that moves only when a test moves it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def timer_tools(path, clock=time.time, announce=None):
    """Timers on `path` with their tools in a registry (no fast path, no audit log)."""
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    timers = Timers(TimerStore(path), bus, announce or ControlsSpy().say, clock=clock)
    registry = ToolRegistry(bus)
    register_builtin_tools(registry, DeviceDirectory([]), timers)

    async def call(tool: str, **arguments) -> tuple[bool, str]:
        outcome = await registry.call(tool, arguments, CallContext("api"))
        return outcome.ok, outcome.message

    return timers, call, recorder


def test_pause_resume_and_adjust_say_what_was_done(tmp_path):
    clock = Clock()
    timers, call, recorder = timer_tools(tmp_path / "t.sqlite3", clock)

    async def main():
        said = [await call("timer_set", seconds=480, name="pasta")]
        clock.now += 240
        said.append(await call("timer_pause"))
        clock.now += 600  # paused: the ten minutes away do not count
        said += [await call("timer_remaining"), await call("timer_list")]
        said.append(await call("timer_resume", name="pasta"))
        clock.now += 60
        said.append(await call("timer_adjust", seconds=300, name="pasta"))
        said.append(await call("timer_adjust", seconds=-120))
        said.append(await call("timer_remaining", name="pasta"))
        said.append(await call("timer_set", seconds=300))
        said.append(await call("timer_adjust", seconds=-120, name="five minute"))
        (pasta,) = timers.find("pasta")
        await timers.close()
        return said, pasta

    said, pasta = asyncio.run(main())
    assert said == [
        (True, "OK, pasta timer for eight minutes, starting now."),
        (True, "Paused the pasta timer with four minutes left."),
        (True, "The pasta timer is paused with four minutes left."),
        (True, "You have one timer: the pasta timer, paused with four minutes left."),
        (True, "Resumed the pasta timer: four minutes left."),
        (True, "Added five minutes to the pasta timer: eight minutes left."),
        (True, "Took two minutes off the pasta timer: six minutes left."),
        (True, "Six minutes left on the pasta timer."),
        (True, "OK, five minutes, starting now."),
        (True, "Took two minutes off the timer: three minutes left."),
    ]
    assert (pasta.state, pasta.seconds, pasta.paused_left) == ("running", 480 + 300 - 120, None)
    assert pasta.ends_at == clock.now + 360
    events = [(t.name, t.state, t.seconds) for t in recorder.of("timer")]
    assert events == [
        ("pasta", "set", 480), ("pasta", "paused", 480), ("pasta", "resumed", 480),
        ("pasta", "changed", 780), ("pasta", "changed", 660), ("", "set", 300),
        ("", "changed", 180),
    ]  # fmt: skip
    paused, resumed = recorder.of("timer")[1:3]
    assert paused.ends_at == 1_700_000_000.0 + 480  # when it would have ended
    assert resumed.ends_at == 1_700_000_000.0 + 840 + 240


def test_which_timer_to_pause_resume_or_change(tmp_path):
    clock = Clock()
    timers, call, recorder = timer_tools(tmp_path / "t.sqlite3", clock)

    async def main():
        said = [await call("timer_pause"), await call("timer_resume")]
        await call("timer_set", seconds=480, name="pasta")
        await call("timer_set", seconds=600, name="rice")
        said += [await call("timer_pause"), await call("timer_resume", name="pasta")]
        said += [await call("timer_pause", name="pasta"), await call("timer_pause", name="pasta")]
        said.append(await call("timer_pause"))  # only the rice one is running
        said += [await call("timer_pause"), await call("timer_adjust", seconds=60)]
        said.append(await call("timer_resume"))
        said.append(await call("timer_pause", name="tea"))
        said.append(await call("timer_adjust", seconds=0, name="rice"))
        said.append(await call("timer_cancel", name="pasta"))  # a paused one
        said.append(await call("timer_cancel", all=True))
        await timers.close()
        return said

    assert asyncio.run(main()) == [
        (False, "You have no running timer."),
        (False, "You have no paused timer."),
        (False, "Which timer do you want to pause: the pasta timer or the rice timer?"),
        (False, "The pasta timer is already running."),
        (True, "Paused the pasta timer with eight minutes left."),
        (False, "The pasta timer is already paused."),
        (True, "Paused the rice timer with ten minutes left."),
        (False, "You have no running timer."),
        (False, "Which timer do you want to change: the pasta timer or the rice timer?"),
        (False, "Which timer do you want to resume: the pasta timer or the rice timer?"),
        (False, "You have no running tea timer."),
        (False, "By how much should I change the rice timer?"),
        (True, "Cancelled the pasta timer."),
        (True, "Cancelled one timer."),
    ]
    assert [t.state for t in recorder.of("timer")][-2:] == ["cancelled", "cancelled"]
    assert timers.store.active() == []


def test_adjusting_past_zero_or_past_the_limit_is_refused_and_changes_nothing(tmp_path):
    clock = Clock()
    timers, call, recorder = timer_tools(tmp_path / "t.sqlite3", clock)

    async def main():
        await call("timer_set", seconds=600, name="pasta")
        clock.now += 480
        said = [
            await call("timer_adjust", seconds=-120, name="pasta"),  # would fire now
            await call("timer_adjust", seconds=-600, name="pasta"),
            await call("timer_adjust", seconds=24 * 3600 + 600, name="pasta"),
        ]
        await call("timer_pause")
        said.append(await call("timer_adjust", seconds=-150))
        said.append(await call("timer_adjust", seconds=-60))
        left = timers.remaining(timers.find()[0])
        await timers.close()
        return said, left

    said, left = asyncio.run(main())
    assert said == [
        (False, "The pasta timer has only two minutes left."),
        (False, "The pasta timer has only two minutes left."),
        (
            False,
            "I can only set timers of up to twenty four hours; twenty four hours and twenty "
            "minutes is too long.",
        ),
        (False, "The pasta timer has only two minutes left."),
        (True, "Took one minute off the paused pasta timer: one minute left."),
    ]
    assert left == 60
    assert [t.state for t in recorder.of("timer")] == ["set", "paused", "changed"]


def test_a_paused_timer_does_not_fire_and_fires_once_resumed(tmp_path):
    controls = ControlsSpy()
    store = TimerStore(tmp_path / "t.sqlite3")
    store.add("tea", 1.0, time.time() - 0.85)  # 0.15 s left
    timers = Timers(store, ev.EventBus(), controls.say)

    async def main():
        await timers.start()
        (tea,) = timers.find("tea")
        paused = await timers.pause(tea)
        await asyncio.sleep(0.3)
        quiet = list(controls.said)
        frozen = timers.remaining(timers.find("tea")[0])
        await timers.resume(paused)
        for _ in range(40):
            if controls.said:
                break
            await asyncio.sleep(0.02)
        await timers.close()
        return quiet, paused, frozen

    quiet, paused, frozen = asyncio.run(main())
    assert quiet == []
    assert 0.05 < paused.paused_left < 0.16 and frozen == paused.paused_left
    assert controls.said == [("Your tea timer is done.", None)]
    assert store.active() == []


def test_a_lengthened_timer_fires_at_its_new_end_not_the_old_one(tmp_path):
    controls = ControlsSpy()
    store = TimerStore(tmp_path / "t.sqlite3")
    store.add("tea", 1.0, time.time() - 0.9)  # 0.1 s left
    timers = Timers(store, ev.EventBus(), controls.say)

    async def main():
        await timers.start()
        (tea,) = timers.find("tea")
        changed = await timers.adjust(tea, 0.25)
        await asyncio.sleep(0.15)  # past the old end
        early = list(controls.said)
        for _ in range(40):
            if controls.said:
                break
            await asyncio.sleep(0.02)
        fired_at = time.time()
        await timers.close()
        return early, tea, changed, fired_at

    early, tea, changed, fired_at = asyncio.run(main())
    assert early == []
    assert changed.seconds == 1.25 and changed.ends_at == tea.ends_at + 0.25
    assert controls.said == [("Your tea timer is done.", None)]
    assert fired_at >= changed.ends_at


def test_a_paused_timer_is_still_paused_after_a_restart(tmp_path):
    clock = Clock()
    path = tmp_path / "timers.sqlite3"
    first, call, _ = timer_tools(path, clock)

    async def before():
        await call("timer_set", seconds=480, name="pasta")
        clock.now += 240
        assert await call("timer_pause") == (True, "Paused the pasta timer with four minutes left.")
        await first.close()
        first.store.close()

    asyncio.run(before())
    clock.now += 3600  # off for an hour
    controls = ControlsSpy()
    second, call, recorder = timer_tools(path, clock, controls.say)

    async def after():
        await second.start()
        said = [await call("timer_list"), await call("timer_resume")]
        clock.now += 60
        said.append(await call("timer_remaining"))
        await second.close()
        return said

    assert asyncio.run(after()) == [
        (True, "You have one timer: the pasta timer, paused with four minutes left."),
        (True, "Resumed the pasta timer: four minutes left."),
        (True, "Three minutes left on the pasta timer."),
    ]
    assert controls.said == []  # not announced as "ended while I was off"
    restored, resumed = recorder.of("timer")
    assert (restored.state, restored.name, restored.seconds) == ("paused", "pasta", 480)
    assert resumed.state == "resumed" and resumed.ends_at == clock.now - 60 + 240


def test_an_old_timers_file_is_migrated_in_place(tmp_path):
    """A timers.sqlite3 written before pausing existed: no paused_left column."""
    path = tmp_path / "timers.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE timers (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
        " seconds REAL NOT NULL, created_at REAL NOT NULL, ends_at REAL NOT NULL,"
        " state TEXT NOT NULL);"
    )
    now = float(int(time.time()))
    db.execute("INSERT INTO timers (name, seconds, created_at, ends_at, state)"
               " VALUES ('pasta', 600, ?, ?, 'running')", (now - 60, now + 540))  # fmt: skip
    db.execute("INSERT INTO timers (name, seconds, created_at, ends_at, state)"
               " VALUES ('tea', 60, ?, ?, 'fired')", (now - 600, now - 540))  # fmt: skip
    db.commit()
    db.close()

    store = TimerStore(path)
    assert store.problem is None
    (pasta,) = store.active()
    assert (pasta.name, pasta.state, pasta.paused_left) == ("pasta", "running", None)
    paused = store.pause(pasta.id, now)
    assert paused is not None and paused.paused_left == 540
    store.close()

    reopened = TimerStore(path)  # the column is there now: nothing to migrate
    assert [(t.name, t.state, t.paused_left) for t in reopened.active()] == [
        ("pasta", "paused", 540)
    ]
    assert reopened.running() == []
    reopened.close()
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(timers)")]
    assert columns[-1] == "paused_left" and columns.count("paused_left") == 1
