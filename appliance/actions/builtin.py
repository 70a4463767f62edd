"""The built-in tools: devices, timers, time and date, arithmetic, stop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from appliance.actions.devices import Device, DeviceDirectory
from appliance.actions.numbers import number_words, spoken_duration
from appliance.actions.timers import TimerRecord, Timers
from appliance.actions.tools import Param, Tool, ToolError, ToolRegistry

OPERATORS = ("plus", "minus", "times", "divided by")


def register_builtin_tools(
    registry: ToolRegistry,
    devices: DeviceDirectory,
    timers: Timers | None,
    *,
    now: Callable[[], dt.datetime] = dt.datetime.now,
    stop: Callable[[], bool] | None = None,
) -> None:
    names = tuple(devices.names)
    if names:
        _device_tools(registry, devices, names)
    if timers is not None:
        _timer_tools(registry, timers)

    async def time_now(_: dict[str, Any]) -> str:
        return f"It's {speak_time(now())}."

    async def date_today(_: dict[str, Any]) -> str:
        return f"Today is {speak_date(now())}."

    async def calculate(args: dict[str, Any]) -> str:
        a, op, b = args["a"], args["operator"], args["b"]
        return (
            f"{format_number(a)} {op} {format_number(b)} is {format_number(arithmetic(a, op, b))}."
        )

    async def stop_tool(_: dict[str, Any]) -> str:
        stopped = stop() if stop is not None else False
        return "" if stopped else "Nothing is playing."

    registry.register(Tool("time_now", "Tell the current time.", time_now))
    registry.register(Tool("date_today", "Tell today's date and weekday.", date_today))
    registry.register(
        Tool(
            "calculate",
            "Work out a sum: a plus/minus/times/divided by b.",
            calculate,
            (
                Param("a", "number"),
                Param("operator", "string", enum=OPERATORS),
                Param("b", "number"),
            ),
        )
    )
    registry.register(Tool("stop", "Stop what is being said or played.", stop_tool))


def _device_tools(registry: ToolRegistry, devices: DeviceDirectory, names: tuple[str, ...]) -> None:
    device_param = Param("device", "string", "the device's name", enum=names)

    def find(args: dict[str, Any]) -> Device:
        device = devices.get(args["device"])
        if device is None:  # cannot happen after validation; kept for direct calls
            raise ToolError(f"I don't know a device called {args['device']}.")
        return device

    def switch(on: bool | None) -> Callable[[dict[str, Any]], Any]:
        async def run(args: dict[str, Any]) -> str:
            device = find(args)
            target = on
            if target is None:
                state = device.backend.is_on()
                if state is None:
                    raise ToolError(
                        f"I don't know whether the {device.name} is on, so I can't toggle it."
                    )
                target = not state
            await device.backend.set_on(target)
            return f"The {device.name} is {'on' if target else 'off'}."

        return run

    async def brightness(args: dict[str, Any]) -> str:
        device = find(args)
        if not device.backend.dimmable:
            raise ToolError(f"The {device.name} can't be dimmed; I can only turn it on or off.")
        percent = args["percent"]
        await device.backend.set_brightness(percent / 100.0)
        return f"The {device.name} is at {format_number(percent)} percent."

    async def state(args: dict[str, Any]) -> str:
        device = find(args)
        on = device.backend.is_on()
        if on is None:
            return f"I don't know whether the {device.name} is on."
        return f"The {device.name} is {'on' if on else 'off'}."

    registry.register(Tool("device_on", "Turn a device on.", switch(True), (device_param,)))
    registry.register(Tool("device_off", "Turn a device off.", switch(False), (device_param,)))
    registry.register(Tool("device_toggle", "Switch a device to its other state.", switch(None),
                           (device_param,)))  # fmt: skip
    percent = Param("percent", "number", "brightness in percent", minimum=0, maximum=100)
    registry.register(Tool("device_brightness", "Set a light's brightness.", brightness,
                           (device_param, percent)))  # fmt: skip
    registry.register(Tool("device_state", "Say whether a device is on.", state, (device_param,)))


def _timer_tools(registry: ToolRegistry, timers: Timers) -> None:
    name_param = Param("name", "string", 'the timer\'s name, e.g. "pasta"', required=False)

    def left(record: TimerRecord) -> str:
        return spoken_duration(timers.remaining(record))

    async def set_timer(args: dict[str, Any]) -> str:
        record = await timers.set(args["seconds"], args.get("name", ""))
        named = f"{record.name} timer for " if record.name else ""
        return f"OK, {named}{spoken_duration(record.seconds)}, starting now."

    async def list_timers(_: dict[str, Any]) -> str:
        active = timers.active()
        if not active:
            return "You have no timers."
        parts = [
            f"the {t.label}, paused with {left(t)} left" if t.paused
            else f"the {t.label} with {left(t)} left"
            for t in active
        ]  # fmt: skip
        count = "one timer" if len(parts) == 1 else f"{number_words(len(parts))} timers"
        return f"You have {count}: {_join(parts)}."

    def one(name: str, verb: str, state: str = "") -> TimerRecord:
        """The one timer `name` means, among those in `state` (running or paused) when
        given; the sentence to say when there is none or more than one."""
        found = timers.find(name)
        fitting = [t for t in found if not state or t.state == state]
        if not fitting:
            if len(found) == 1:
                raise ToolError(f"The {found[0].label} is already {found[0].state}.")
            named = f"{name} " if name else ""
            raise ToolError(f"You have no {state + ' ' if state else ''}{named}timer.")
        if len(fitting) > 1:
            labels = _join([f"the {t.label}" for t in fitting], "or")
            raise ToolError(f"Which timer do you want to {verb}: {labels}?")
        return fitting[0]

    async def cancel(args: dict[str, Any]) -> str:
        name = args.get("name", "")
        if args.get("all"):
            found = timers.find(name)
            for record in found:
                await timers.cancel(record)
            return (
                "No timers to cancel." if not found else f"Cancelled {_count_timers(len(found))}."
            )
        record = one(name, "cancel")
        await timers.cancel(record)
        return f"Cancelled the {record.label}."

    async def remaining(args: dict[str, Any]) -> str:
        record = one(args.get("name", ""), "check")
        if record.paused:
            return f"The {record.label} is paused with {left(record)} left."
        return f"{_capital(left(record))} left on the {record.label}."

    async def pause(args: dict[str, Any]) -> str:
        record = await timers.pause(one(args.get("name", ""), "pause", "running"))
        return f"Paused the {record.label} with {left(record)} left."

    async def resume(args: dict[str, Any]) -> str:
        record = await timers.resume(one(args.get("name", ""), "resume", "paused"))
        return f"Resumed the {record.label}: {left(record)} left."

    async def adjust(args: dict[str, Any]) -> str:
        name = args.get("name", "")
        before = one(name, "change")
        delta = args["seconds"]
        record = await timers.adjust(before, delta)
        # An unnamed timer is known by its length, which has just changed.
        which = " ".join(filter(None, ("paused" if record.paused else "", record.name, "timer")))
        if delta > 0:
            done = f"Added {spoken_duration(delta)} to the {which}"
        else:
            done = f"Took {spoken_duration(-delta)} off the {which}"
        return f"{done}: {left(record)} left."

    registry.register(
        Tool(
            "timer_set",
            "Start a timer.",
            set_timer,
            (Param("seconds", "number", "length in seconds"), name_param),
        )
    )
    registry.register(Tool("timer_list", "List the timers, running or paused.", list_timers))
    registry.register(
        Tool(
            "timer_cancel",
            "Cancel a timer (or all of them).",
            cancel,
            (name_param, Param("all", "boolean", "cancel every timer", required=False)),
        )
    )
    registry.register(Tool("timer_remaining", "Say how long is left on a timer.", remaining,
                           (name_param,)))  # fmt: skip
    registry.register(Tool("timer_pause", "Pause a running timer.", pause, (name_param,)))
    registry.register(Tool("timer_resume", "Resume a paused timer.", resume, (name_param,)))
    registry.register(
        Tool(
            "timer_adjust",
            "Add time to a timer, or take time off it.",
            adjust,
            (
                Param("seconds", "number", "seconds to add; negative to take time off"),
                name_param,
            ),
        )
    )


def arithmetic(a: float, op: str, b: float) -> float:
    if op == "plus":
        return a + b
    if op == "minus":
        return a - b
    if op == "times":
        return a * b
    if op == "divided by":
        if b == 0:
            raise ToolError("I can't divide by zero.")
        return a / b
    raise ToolError(f"I can't do {op}.")


def format_number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.6g}"


def speak_time(moment: dt.datetime) -> str:
    hour = moment.hour % 12 or 12
    return f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


def speak_date(moment: dt.datetime) -> str:
    return f"{moment:%A}, {moment:%B} {moment.day}, {moment.year}"


def _join(parts: list[str], last: str = "and") -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" {last} " + parts[-1]


def _count_timers(n: int) -> str:
    return "one timer" if n == 1 else f"{number_words(n)} timers"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
