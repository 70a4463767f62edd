"""Command shapes through the command handler, the tool registry, device matching, the audit
log (fakes, no models; the sentence library is real)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from appliance import events as ev
from appliance.actions.audit import AuditEntry, AuditLog
from appliance.actions.devices import (
    Ambiguous,
    Device,
    DeviceDirectory,
    Match,
    MemoryBackend,
    Unknown,
)
from appliance.actions.numbers import parse_duration, parse_number, spoken_duration, tokens
from appliance.actions.tools import CallContext, Param, Tool, ToolRegistry
from appliance.errors import ConfigError
from appliance.house import Actions
from appliance.sections.devices import ActionsConfig, DeviceConfig, DeviceList
from tests.fakes import Recorder

NOON = dt.datetime(2026, 11, 21, 15, 7)


def directory(*specs: tuple[str, str, str, tuple[str, ...]]) -> DeviceDirectory:
    return DeviceDirectory(
        Device(DeviceConfig(name, kind, aliases, room), MemoryBackend())
        for name, kind, room, aliases in specs
    )


HOUSE = (
    ("porch light", "light", "outside", ("front light",)),
    ("kitchen light", "light", "kitchen", ()),
    ("desk lamp", "lamp", "office", ()),
    ("ceiling fan", "fan", "bedroom", ()),
)


class MemoryActions:
    """Actions over MemoryBackend devices (no GPIO): built by hand for unit tests."""

    def __init__(self, tmp_path: Path, specs=HOUSE) -> None:
        self.bus = ev.EventBus()
        self.recorder = Recorder()
        self.bus.subscribe(self.recorder)
        configs = [DeviceConfig(n, k, a, r, mqtt={"command_topic": n}) for n, k, r, a in specs]
        self.backends: dict[str, MemoryBackend] = {}

        def make(name: str, table: dict) -> MemoryBackend:
            self.backends[name] = MemoryBackend(dimmable=name != "ceiling fan")
            return self.backends[name]

        self.actions = Actions(configs, ActionsConfig(), self.bus, tmp_path, make_mqtt=make,
                               now=lambda: NOON)  # fmt: skip

    async def ask(self, text: str, turn: int = 1):
        return await self.actions.intents.handle(text, turn)

    async def fresh(self) -> None:
        """As if just started (for a house shared by several tests): no timers, no open
        question, no events or commands recorded."""
        self.actions.intents.forget()
        for timer in self.actions.timers.active():
            await self.actions.timers.cancel(timer)
        self.recorder.events.clear()
        for backend in self.backends.values():
            backend.commands.clear()


@pytest.fixture(scope="module")
def shared_house(tmp_path_factory):
    """One house for the tests that only ask: starting one costs half a second (hassil
    builds its number words and tries), so the many shapes share it, on one event loop."""
    house = MemoryActions(tmp_path_factory.mktemp("shared"))
    with asyncio.Runner() as runner:
        runner.run(house.actions.start())
        house.run = runner.run
        try:
            yield house
        finally:
            runner.run(house.actions.close())


def run(coro):
    return asyncio.run(coro)


# ---- words and numbers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "seconds"),
    [
        ("five minutes", 300),
        ("an hour and a half", 5400),
        ("one and a half hours", 5400),
        ("ninety seconds", 90),
        ("half an hour", 1800),
        ("1 hour 30 minutes", 5400),
        ("2.5 minutes", 150),
        ("twenty five minutes", 1500),
        ("a couple of minutes", 120),
        ("one hundred and twenty seconds", 120),
    ],
)
def test_spoken_durations(said, seconds):
    assert parse_duration(tokens(said)) == (seconds, len(tokens(said)))


@pytest.mark.parametrize(
    ("said", "value", "used"),
    [("twenty five", 25, 2), ("one hundred and five", 105, 4), ("three thousand and one", 3001, 4),
     ("nineteen hundred", 1900, 2), ("ten ten", 10, 1), ("two three", 2, 1),
     ("twenty thirty", 20, 1), ("five and six", 5, 1)],
)  # fmt: skip
def test_number_words_add_up_only_as_numbers_are_said(said, value, used):
    """ "ten ten" (whisper's stutter) was 20: two numbers side by side are not one."""
    assert parse_number(said.split(), 0) == (value, used)


def test_durations_are_spoken_back_in_words():
    assert spoken_duration(5400) == "one hour and thirty minutes"
    assert spoken_duration(90) == "one minute and thirty seconds"
    assert spoken_duration(600) == "ten minutes"


# (what was said, the tool that must run, its arguments). Every one runs its tool through
# the command handler, successfully, as the only action of the turn.
SHAPES = [
    ("Turn on the porch light.", "device_on", {"device": "porch light"}),
    ("Switch the kitchen light off, please.", "device_off", {"device": "kitchen light"}),
    ("Could you turn off the fan?", "device_off", {"device": "ceiling fan"}),
    ("Set the kitchen light to 40%.", "device_brightness",
     {"device": "kitchen light", "percent": 40}),
    ("Set the brightness of the desk lamp to 50 percent.", "device_brightness",
     {"device": "desk lamp", "percent": 50}),
    ("Set the front light to 40 percent.", "device_brightness",
     {"device": "porch light", "percent": 40}),
    ("Is the porch light on?", "device_state", {"device": "porch light"}),
    ("Toggle the ceiling fan.", "device_toggle", {"device": "ceiling fan"}),
    ("Set a timer for one and a half hours.", "timer_set", {"seconds": 5400, "name": ""}),
    ("Set a pasta timer for 10 minutes.", "timer_set", {"seconds": 600, "name": "pasta"}),
    ("Set a 10 minute timer.", "timer_set", {"seconds": 600, "name": ""}),
    ("Set a timer for ninety seconds called eggs", "timer_set",
     {"seconds": 90, "name": "eggs"}),
    ("Set a timer for 2 hours and 15 minutes.", "timer_set", {"seconds": 8100, "name": ""}),
    ("How long is left on the pasta timer?", "timer_remaining", {"name": "pasta"}),
    ("Pause the pasta timer.", "timer_pause", {"name": "pasta"}),
    ("Add 5 minutes to the pasta timer.", "timer_adjust", {"seconds": 300, "name": "pasta"}),
    ("Cancel the pasta timer.", "timer_cancel", {"name": "pasta"}),
    ("Cancel all timers.", "timer_cancel", {"name": "", "all": True}),
    ("Timer status.", "timer_list", {}),
    ("What time is it?", "time_now", {}),
    ("What's the date today?", "date_today", {}),
    ("What's seventeen times twenty three?", "calculate",
     {"a": 17, "operator": "times", "b": 23}),
    ("What is 17 x 23?", "calculate", {"a": 17, "operator": "times", "b": 23}),
    ("What 17 times 23?", "calculate", {"a": 17, "operator": "times", "b": 23}),
    ("What is one hundred and five divided by five?", "calculate",
     {"a": 105, "operator": "divided by", "b": 5}),
    ("100 and 5 divided by 5.", "calculate", {"a": 105, "operator": "divided by", "b": 5}),
    ("1 hundred and five divided by five", "calculate",
     {"a": 105, "operator": "divided by", "b": 5}),
    ("What if 17 times 23?", "calculate", {"a": 17, "operator": "times", "b": 23}),
    ("Turn on the porch light. Turn on the porch light. Turn on the porch light.", "device_on",
     {"device": "porch light"}),
    ("Add milk to my shopping list.", "list_add", {"item": "milk", "list": "shopping"}),
    ("Toggle the fan.", "device_toggle", {"device": "ceiling fan"}),
    ("Dim the front light to 40 percent.", "device_brightness",
     {"device": "porch light", "percent": 40}),
]  # fmt: skip
SET_UP = {
    "How long is left on the pasta timer?": "Set a pasta timer for 10 minutes.",
    "Pause the pasta timer.": "Set a pasta timer for 10 minutes.",
    "Add 5 minutes to the pasta timer.": "Set a pasta timer for 10 minutes.",
    "Cancel the pasta timer.": "Set a pasta timer for 10 minutes.",
    "Cancel all timers.": "Set a timer for 5 minutes.",
}
"""What must be there before the request (a timer to ask about)."""


@pytest.mark.parametrize(("text", "tool", "arguments"), SHAPES)
def test_command_shapes_run_their_tool(shared_house, text, tool, arguments):
    house = shared_house

    async def main():
        await house.fresh()
        if text in SET_UP:
            assert (await house.ask(SET_UP[text])).action == "timer_set"
        house.recorder.events.clear()
        return await house.ask(text, 2)

    handled = house.run(main())
    assert handled is not None, text
    assert handled.handler == "intents" and handled.action == tool, handled
    ran = [(a.tool, a.arguments, a.ok, a.path) for a in house.recorder.of("action")]
    assert ran == [(tool, arguments, True, "intent")], (text, handled.reply)
    (intent,) = house.recorder.of("intent")
    assert intent.path == "library" and intent.score == 1.0, intent


@pytest.mark.parametrize(
    "text",
    [
        "What is the capital of France?",
        "Turn the page and tell me a story about lights.",
        "What is seventeen times a lot?",
        "What is 2 and 3 plus 4?",
        "How do I set a timer on my oven?",
        "Put on some music.",
        "",
        "   ",
        "Tell me a joke.",
        "Is that on?",
        "Carry on.",
        "Thank you.",
        "Yes.",
        "Cancel.",
        "asdf qwer zxcv",
        "Turn it off.",
    ],
)
def test_other_requests_are_not_commands(shared_house, text):
    """Left to the language model: nothing answered, nothing run, nothing logged."""
    house = shared_house

    async def main():
        await house.fresh()
        return await house.ask(text)

    assert house.run(main()) is None
    assert house.recorder.of("action") == [] and house.recorder.of("intent") == []
    assert not any(b.commands for b in house.backends.values())


# ---- device matching ----------------------------------------------------------------------


def test_names_aliases_rooms_and_mishearings_find_exactly_one_device():
    devices = directory(*HOUSE)
    for said, name in [
        ("the porch light", "porch light"),
        ("the front light", "porch light"),
        ("the porsche light", "porch light"),  # whisper's spellings
        ("the port's light", "porch light"),
        ("the kitchen light", "kitchen light"),
        ("my desk lamp", "desk lamp"),
        ("the lamp", "desk lamp"),
        ("the fan", "ceiling fan"),
        ("the outside light", "porch light"),
    ]:
        found = devices.resolve(said)
        assert isinstance(found, Match) and found.device.name == name, (said, found)


def test_an_ambiguous_or_unknown_phrase_names_no_device():
    devices = directory(*HOUSE)
    light = devices.resolve("the light")
    assert isinstance(light, Ambiguous)
    assert {d.name for d in light.candidates} == {"porch light", "kitchen light"}
    assert light.question() == "Which light: the porch light or the kitchen light?"
    for said in ("the garage door", "the kitchen fan", "the radio", "the"):
        assert isinstance(devices.resolve(said), Unknown), said


def test_device_config_is_checked(tmp_path):
    def parse_devices(items):
        return DeviceList.from_toml(items, "devices")

    devices = parse_devices([{"name": "porch light", "aliases": ["front light"],
                              "gpio": {"pin": 17, "pwm": True}}])  # fmt: skip
    assert devices[0].gpio.pwm and devices[0].names == ("porch light", "front light")
    bad = [
        ([{"name": "a", "gpio": {"pin": 17}}, {"name": "b", "gpio": {"pin": 17}}], "pin 17"),
        ([{"name": "a", "gpio": {"pin": 99}}], "0–53"),
        ([{"name": "a"}], "exactly one of gpio"),
        ([{"name": "a", "gpio": {"pin": 1}, "mqtt": {}}], "exactly one of gpio"),
        ([{"name": "a", "kind": "toaster", "gpio": {"pin": 1}}], "kind must be"),
        ([{"name": "a", "gpio": {"pin": 1}}, {"name": "b", "aliases": ["A"], "gpio": {"pin": 2}}],
         "unique"),
        ([{"name": "a", "colour": "red", "gpio": {"pin": 1}}], "unknown setting"),
        ({"name": "a"}, "array"),
    ]  # fmt: skip
    for items, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_devices(items)


def test_the_config_file_reads_devices_and_actions(tmp_path):
    from appliance.config import load_config

    path = tmp_path / "config.toml"
    path.write_text(
        '[[devices]]\nname = "porch light"\ngpio = { pin = 17, pwm = true }\n'
        '[[devices]]\nname = "fan"\nkind = "fan"\nmqtt = { command_topic = "home/fan/set" }\n'
        "[actions]\nmax_timer_hours = 12\n[actions.button]\npin = 5\n"
    )
    config = load_config(path)
    assert [d.name for d in config.devices] == ["porch light", "fan"]
    assert config.devices[1].mqtt == {"command_topic": "home/fan/set"}
    assert config.actions.max_timer_hours == 12 and config.actions.button.pin == 5
    path.write_text('[[devices]]\nname = "x"\ngpio = { pin = "seventeen" }\n')
    with pytest.raises(ConfigError, match="BCM pin"):
        load_config(path)


def test_an_mqtt_device_without_a_broker_is_a_clear_config_error(tmp_path):
    config = DeviceConfig("fan", "fan", mqtt={"command_topic": "x"})
    with pytest.raises(ConfigError, match='device "fan" uses MQTT but no \\[mqtt\\] broker'):
        Actions([config], ActionsConfig(), ev.EventBus(), tmp_path)


# ---- the command handler running tools -------------------------------------------------


def test_commands_switch_the_named_device_and_say_so(tmp_path):
    house = MemoryActions(tmp_path)

    async def main():
        async with house.actions:
            on = await house.ask("Turn on the porch light.")
            dim = await house.ask("Set the front light to 40 percent.", 2)
            state = await house.ask("Is the porch light on?", 3)
            off = await house.ask("Switch the porch light off.", 4)
            return on, dim, state, off

    on, dim, state, off = run(main())
    assert on.reply == "The porch light is on." and on.action == "device_on"
    assert on.handler == "intents"
    assert dim.reply == "The porch light is at 40 percent."
    assert state.reply == "The porch light is on."
    assert off.reply == "The porch light is off."
    porch = house.backends["porch light"]
    assert porch.commands == [("on", True), ("brightness", 0.4), ("on", False)]
    assert all(not b.commands for n, b in house.backends.items() if n != "porch light")
    actions = house.recorder.of("action")
    assert [(a.tool, a.ok, a.path) for a in actions] == [
        ("device_on", True, "intent"), ("device_brightness", True, "intent"),
        ("device_state", True, "intent"), ("device_off", True, "intent"),
    ]  # fmt: skip
    assert actions[1].arguments == {"percent": 40.0, "device": "porch light"}


def test_ambiguous_device_asks_which_and_the_answer_completes_the_command(tmp_path):
    house = MemoryActions(tmp_path)

    async def main():
        async with house.actions:
            question = await house.ask("Turn on the light.")
            assert not any(b.commands for b in house.backends.values())
            answer = await house.ask("The kitchen one.", 2)
            return question, answer

    question, answer = run(main())
    assert question.reply == "Which light: the porch light or the kitchen light?"
    assert question.follow_up
    assert answer.reply == "The kitchen light is on."
    assert house.backends["kitchen light"].commands == [("on", True)]
    assert house.backends["porch light"].commands == []


def test_unknown_devices_out_of_range_and_other_requests_switch_nothing(tmp_path):
    house = MemoryActions(tmp_path)

    async def main():
        async with house.actions:
            return [
                await house.ask(text, turn)
                for turn, text in enumerate([
                    "Turn on the garage door.",
                    "Set the porch light brightness to 300 percent.",
                    "Set the ceiling fan to 50 percent.",
                    "Put on some music.",
                ], 1)
            ]  # fmt: skip

    garage, bright, fan, music = run(main())
    assert garage.reply == "I don't know a device called garage door."
    assert bright.reply == (
        "Brightness goes from 0 to 100 percent, so I left the porch light as it was."
    )
    assert fan.reply == "I can only turn fans on or off, not set their speed."
    assert music is None  # on to the language model
    assert not any(b.commands for b in house.backends.values())
    logged = AuditLog(tmp_path / "audit.sqlite3").entries()
    # The fan's speed names no tool of ours: answered, not logged as a refused call.
    assert [(e.tool, e.ok) for e in logged] == [("device_on", False), ("device_brightness", False)]
    assert logged[0].transcript == "Turn on the garage door." and logged[0].path == "intent"
    assert json.loads(logged[0].intent)["intent"] == "HassTurnOn"


def test_a_command_cut_short_claims_no_device_called_like_the_verb(tmp_path):
    """ "Turn on the." (whisper cut it short): the old fast path asked "which device?";
    it must not be read as a device called "turn on"."""
    house = MemoryActions(tmp_path)

    async def main():
        async with house.actions:
            return await house.ask("Turn on the.")

    handled = run(main())
    assert handled is None or "called turn on" not in handled.reply, handled
    assert not any(b.commands for b in house.backends.values())


def test_all_the_lights(tmp_path):
    """Every light (a lamp is a light, as in Home Assistant's domains); the fan stays."""
    house = MemoryActions(tmp_path)

    async def main():
        async with house.actions:
            return await house.ask("Turn off all the lights.")

    reply = run(main())
    assert reply.reply == "Turned off the porch light, kitchen light and desk lamp."
    for name in ("porch light", "kitchen light", "desk lamp"):
        assert house.backends[name].commands == [("on", False)], name
    assert house.backends["ceiling fan"].commands == []
    assert [(a.tool, a.arguments["device"]) for a in house.recorder.of("action")] == [
        ("device_off", "porch light"), ("device_off", "kitchen light"),
        ("device_off", "desk lamp"),
    ]  # fmt: skip


def test_time_date_and_sums(tmp_path):
    house = MemoryActions(tmp_path)

    async def main():
        async with house.actions:
            return [
                (await house.ask(text)).reply
                for text in ("What time is it?", "What's today's date?",
                             "What's seventeen times twenty three?", "What is 7 divided by 0?",
                             "What is ten divided by four?")
            ]  # fmt: skip

    assert run(main()) == [
        "It's 3:07 PM.",
        "Today is Saturday, November 21, 2026.",
        "17 times 23 is 391.",
        "I can't divide by zero.",
        "10 divided by 4 is 2.5.",
    ]


def test_no_devices_configured(tmp_path):
    house = MemoryActions(tmp_path, specs=())

    async def main():
        async with house.actions:
            return await house.ask("Turn on the light.")

    assert run(main()).reply == "I don't have any devices set up."


# ---- the registry ------------------------------------------------------------------------


def test_registry_validates_arguments_and_survives_a_failing_tool(tmp_path):
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    registry = ToolRegistry(bus, AuditLog(tmp_path / "a.sqlite3"))

    async def boom(args):
        raise RuntimeError("the relay board is unplugged")

    async def echo(args):
        return f"level {args['level']}"

    registry.register(Tool("boom", "always fails", boom))
    registry.register(Tool("level", "a level", echo,
                           (Param("level", "integer", minimum=0, maximum=10),)))  # fmt: skip
    context = CallContext("llm", 3, "do it")

    async def main():
        return [
            await registry.call("level", {"level": 4}, context),
            await registry.call("level", {"level": 11}, context),
            await registry.call("level", {"level": "4"}, context),
            await registry.call("level", {"level": 4, "extra": 1}, context),
            await registry.call("level", {}, context),
            await registry.call("nope", {}, context),
            await registry.call("boom", {}, context),
        ]

    outcomes = run(main())
    assert [o.ok for o in outcomes] == [True] + [False] * 6
    assert outcomes[0].message == "level 4"
    assert outcomes[1].message == "Sorry, I couldn't do that. Level must be at most 10."
    assert "must be a number" in outcomes[2].message
    assert "level tool takes no extra" in outcomes[3].message
    assert "level tool needs level" in outcomes[4].message
    assert outcomes[5].message == "Sorry, I couldn't do that. I have no tool called nope."
    assert "unplugged" in outcomes[6].message
    assert len(recorder.of("action")) == 7
    assert len(registry.audit.entries()) == 7
    with pytest.raises(ValueError):
        registry.register(Tool("boom", "again", boom))


def test_the_json_schema_of_a_tool():
    tool = Tool("x", "x", None, (Param("device", "string", enum=("a", "b")),  # type: ignore[arg-type]
                                 Param("n", "number", minimum=0, required=False)))  # fmt: skip
    assert tool.arguments_schema() == {
        "type": "object",
        "properties": {"device": {"type": "string", "enum": ["a", "b"]},
                       "n": {"type": "number", "minimum": 0}},
        "required": ["device"],
    }  # fmt: skip


# ---- the audit log -------------------------------------------------------------------------


def entry(when: float, tool: str = "device_on") -> AuditEntry:
    return AuditEntry(when, "voice", "fast", 1, "turn it on", tool, {"device": "x"}, True, "ok")


def test_the_audit_log_is_append_only_and_keeps_what_retention_allows(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite3", retention_days=1, max_rows=100)
    now = 1_800_000_000.0
    log.append(entry(now - 3 * 86400, "old"))
    for i in range(120):
        log.append(entry(now - 100 + i, f"t{i}"))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        log._db.execute("UPDATE actions SET ok = 0")
    assert log.prune(now) == 21  # the 3-day-old one, then the 20 oldest beyond 100 rows
    kept = log.entries()
    assert len(kept) == 100 and kept[0].tool == "t20" and kept[-1].tool == "t119"
    assert [e.tool for e in log.entries(limit=2)] == ["t118", "t119"]
    log.close()
    reopened = AuditLog(tmp_path / "audit.sqlite3")
    assert reopened.entries(limit=1)[0].arguments == {"device": "x"}
    reopened.close()


def test_saving_a_setting_keeps_the_devices(tmp_path):
    from appliance.config import load_config, set_config_value

    path = tmp_path / "config.toml"
    path.write_text(
        '[[devices]]\nname = "porch light"\naliases = ["front light"]\n'
        "gpio = { pin = 17, pwm = true }\n"
        '[[devices]]\nname = "fan"\nkind = "fan"\nmqtt = { command_topic = "home/fan/set" }\n'
        "[actions.button]\npin = 5\n"
    )
    before = load_config(path)
    set_config_value(path, "llm", "max_tokens", 64)
    after = load_config(path)
    assert after.devices == before.devices and after.actions == before.actions
    assert after.llm.max_tokens == 64


def test_actions_log_prints_the_audit_log(tmp_path):
    from tests.fakes import appliance

    log = AuditLog(tmp_path / "audit.sqlite3")
    log.append(entry(1_800_000_000.0))
    log.close()
    proc = appliance("actions", "log", env={"APPLIANCE_DATA_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert 'ok   voice/fast "turn it on"' in proc.stdout
    assert "device_on(device='x') → ok" in proc.stdout
    empty = appliance("actions", "log", env={"APPLIANCE_DATA_DIR": str(tmp_path / "none")})
    assert empty.returncode == 0 and "No actions yet" in empty.stdout
