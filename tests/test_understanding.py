"""Understanding commands: the recognizer (hassil over Home Assistant's sentence library,
misheard names and words corrected) and the command handler (tools, questions, honest
answers). No models: the library and hassil are real, the devices are MemoryBackends."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from rapidfuzz import fuzz

from appliance import events as ev
from appliance.actions.audit import AuditEntry, AuditLog
from appliance.actions.devices import MemoryBackend
from appliance.errors import ModelError
from appliance.house import Actions
from appliance.sections.devices import ActionsConfig, DeviceConfig, DeviceList
from appliance.understanding import phonetic
from appliance.understanding.handler import ACT_SCORE
from appliance.understanding.library import load_library
from appliance.understanding.phonetic import SoundsLike, fold
from appliance.understanding.recognition import Recognition
from appliance.understanding.recognizer import MAX_WORDS, Recognizer
from tests.fakes import Recorder

NOON = dt.datetime(2026, 11, 21, 15, 7)
Spec = tuple[str, str, str, tuple[str, ...]]
"""name, kind, room, aliases"""

HOME: tuple[Spec, ...] = (
    ("porch light", "light", "outside", ("front light",)),
    ("kitchen light", "light", "kitchen", ()),
    ("bed light", "light", "bedroom", ("bedside lamp",)),
    ("standing light", "light", "living room", ()),
    ("ceiling fan", "fan", "bedroom", ()),
)
SIMILAR: tuple[Spec, ...] = (
    ("porch light", "light", "outside", ()),
    ("porch fan", "fan", "outside", ()),
    ("kitchen light", "light", "kitchen", ()),
    ("kitchen lamp", "lamp", "kitchen", ()),
    ("bed light", "light", "bedroom", ()),
    ("bedroom lamp", "lamp", "bedroom", ()),
)


def configs(specs: tuple[Spec, ...]) -> list[DeviceConfig]:
    return [DeviceConfig(n, k, a, r, mqtt={"command_topic": n}) for n, k, r, a in specs]


class House:
    """Actions over MemoryBackend devices, with what they were told and the events."""

    def __init__(self, data: Path, specs: tuple[Spec, ...], *, language: str = "en") -> None:
        self.bus = ev.EventBus()
        self.recorder = Recorder()
        self.bus.subscribe(self.recorder)
        self.backends: dict[str, MemoryBackend] = {}

        def make(name: str, table: dict[str, Any]) -> MemoryBackend:
            self.backends[name] = MemoryBackend(dimmable=name != "ceiling fan")
            return self.backends[name]

        self.actions = Actions(configs(specs), ActionsConfig(), self.bus, data, make_mqtt=make,
                               now=lambda: NOON, language=language)  # fmt: skip
        self.run: Any = None
        """The event loop's `run` (set by `running`)."""

    async def fresh(self) -> None:
        """As if just started: no timers, empty lists, no open question, nothing
        recorded."""
        self.actions.intents.forget()
        for name in ("shopping", "todo"):
            self.actions.lists.clear(name)
        for timer in self.actions.timers.active():
            await self.actions.timers.cancel(timer)
        self.recorder.events.clear()
        for backend in self.backends.values():
            backend.commands.clear()

    def say(self, *texts: str) -> list[Any]:
        """Each text in its own turn (1, 2, …) on a fresh house; the handler's answers."""

        async def main() -> list[Any]:
            await self.fresh()
            return [await self.actions.intents.handle(t, n) for n, t in enumerate(texts, 1)]

        return self.run(main())

    def switched(self) -> dict[str, list[tuple[str, Any]]]:
        return {name: b.commands for name, b in self.backends.items() if b.commands}

    def of(self, kind: str, turn: int | None = None) -> list[Any]:
        return [e for e in self.recorder.of(kind) if turn is None or e.turn == turn]


@contextlib.contextmanager
def running(house: House):
    """The house started on one event loop for as long as the block runs (several tests
    share it: starting one costs half a second while hassil builds its tries)."""
    with asyncio.Runner() as runner:
        runner.run(house.actions.start())
        house.run = runner.run
        try:
            yield house
        finally:
            runner.run(house.actions.close())


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with running(House(tmp_path_factory.mktemp("home"), HOME)) as house:
        yield house


@pytest.fixture(scope="module")
def similar(tmp_path_factory):
    with running(House(tmp_path_factory.mktemp("similar"), SIMILAR)) as house:
        yield house


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer(load_library("en"), configs(HOME))


# ---- each intent family -------------------------------------------------------------------

SET_TIMER = "Set a timer for 5 minutes."
FAMILIES = [
    # (said before, said, intent, the tool's calls as (tool, arguments))
    ((), "Turn on the porch light.", "HassTurnOn", [("device_on", {"device": "porch light"})]),
    ((), "Turn off the front light.", "HassTurnOff", [("device_off", {"device": "porch light"})]),
    ((), "Switch on the bedside lamp.", "HassTurnOn", [("device_on", {"device": "bed light"})]),
    ((), "Turn on the kitchen lights.", "HassTurnOn",
     [("device_on", {"device": "kitchen light"})]),
    ((), "Turn off all the lights.", "HassTurnOff",
     [("device_off", {"device": d}) for d in ("porch light", "kitchen light", "bed light",
                                              "standing light")]),
    ((), "Turn on the lights in the bedroom.", "HassTurnOn",
     [("device_on", {"device": "bed light"})]),
    ((), "Toggle the ceiling fan.", "HassToggle", [("device_toggle", {"device": "ceiling fan"})]),
    ((), "Set the kitchen light to 30 percent.", "HassLightSet",
     [("device_brightness", {"device": "kitchen light", "percent": 30})]),
    ((), "Turn the bed light down to 10 percent.", "HassLightSet",
     [("device_brightness", {"device": "bed light", "percent": 10})]),
    ((), "Dim the kitchen light.", "HassLightSet",
     [("device_brightness", {"device": "kitchen light", "percent": 30})]),
    ((), "Make the porch light brighter.", "HassLightSet",
     [("device_brightness", {"device": "porch light", "percent": 100})]),
    ((), "Lights off.", "HassTurnOff",
     [("device_off", {"device": d}) for d in ("porch light", "kitchen light", "bed light",
                                              "standing light")]),
    ((), "Is the porch light on?", "HassGetState", [("device_state", {"device": "porch light"})]),
    ((), "Set a timer for 5 minutes.", "HassStartTimer",
     [("timer_set", {"seconds": 300, "name": ""})]),
    ((), "Set a pasta timer for 10 minutes.", "HassStartTimer",
     [("timer_set", {"seconds": 600, "name": "pasta"})]),
    ((), "Set a timer for 1 hour and 30 minutes.", "HassStartTimer",
     [("timer_set", {"seconds": 5400, "name": ""})]),
    ((), "Set a timer for two hours and fifteen minutes.", "HassStartTimer",
     [("timer_set", {"seconds": 8100, "name": ""})]),
    ((SET_TIMER,), "Cancel the timer.", "HassCancelTimer", [("timer_cancel", {"name": ""})]),
    ((SET_TIMER, "Set a tea timer for 3 minutes."), "Cancel all timers.",
     "HassCancelAllTimers", [("timer_cancel", {"name": "", "all": True})]),
    ((SET_TIMER,), "Pause the timer.", "HassPauseTimer", [("timer_pause", {"name": ""})]),
    ((SET_TIMER, "Pause the timer."), "Resume the timer.", "HassUnpauseTimer",
     [("timer_resume", {"name": ""})]),
    ((), "Set timer 10 minutes.", "HassStartTimer", [("timer_set", {"seconds": 600, "name": ""})]),
    ((SET_TIMER, "Set a tea timer for 3 minutes."), "What timers do I have?", "HassTimerStatus",
     [("timer_list", {})]),
    (("Set a pasta timer for 10 minutes.",), "Cancel the past timer.", "HassCancelTimer",
     [("timer_cancel", {"name": "pasta"})]),
    ((SET_TIMER,), "How much time is left?", "HassTimerStatus",
     [("timer_remaining", {"name": ""})]),
    ((SET_TIMER, "Set a tea timer for 3 minutes."), "Timer status.", "HassTimerStatus",
     [("timer_list", {})]),
    ((SET_TIMER,), "Add 2 minutes to the timer.", "HassIncreaseTimer",
     [("timer_adjust", {"seconds": 120, "name": ""})]),
    ((), "What time is it?", "HassGetCurrentTime", [("time_now", {})]),
    ((), "What's the date?", "HassGetCurrentDate", [("date_today", {})]),
    ((), "Add milk to my shopping list.", "HassShoppingListAddItem",
     [("list_add", {"item": "milk", "list": "shopping"})]),
    (("Add eggs to the shopping list.",), "What's on my shopping list?", "ApplianceListRead",
     [("list_read", {"list": "shopping"})]),
    ((), "What's seventeen times twenty three?", "ApplianceCalculate",
     [("calculate", {"a": 17, "operator": "times", "b": 23})]),
    # Everyday phrasings the library lacks (our sentences in understanding/library.py).
    ((), "Set a timer for an hour.", "HassStartTimer",
     [("timer_set", {"seconds": 3600, "name": ""})]),
    ((), "Set a timer for an hour and a half.", "HassStartTimer",
     [("timer_set", {"seconds": 5400, "name": ""})]),
    ((SET_TIMER,), "Delete the timer.", "HassCancelTimer", [("timer_cancel", {"name": ""})]),
    ((SET_TIMER, "Pause the timer."), "Unpause the timer.", "HassUnpauseTimer",
     [("timer_resume", {"name": ""})]),
    ((SET_TIMER,), "Check my timer.", "HassTimerStatus", [("timer_remaining", {"name": ""})]),
    ((), "Are the kitchen lights on?", "HassGetState",
     [("device_state", {"device": "kitchen light"})]),
    ((), "Is the fan on?", "HassGetState", [("device_state", {"device": "ceiling fan"})]),
    ((), "Set the bed light to half.", "HassLightSet",
     [("device_brightness", {"device": "bed light", "percent": 50})]),
    ((), "Turn everything off.", "HassTurnOff",
     [("device_off", {"device": d}) for d in ("porch light", "kitchen light", "bed light",
                                              "standing light", "ceiling fan")]),
    ((), "Time, please.", "HassGetCurrentTime", [("time_now", {})]),
    ((), "Um, okay, turn on the porch light, thanks.", "HassTurnOn",
     [("device_on", {"device": "porch light"})]),
    ((), "I need a timer for 5 minutes.", "HassStartTimer",
     [("timer_set", {"seconds": 300, "name": ""})]),
    ((), "Set a timer for 10 min.", "HassStartTimer",
     [("timer_set", {"seconds": 600, "name": ""})]),
    ((), "Dim the bed light a bit.", "HassLightSet",
     [("device_brightness", {"device": "bed light", "percent": 30})]),
    ((SET_TIMER, "Set a tea timer for 3 minutes."), "Cancel both timers.", "HassCancelAllTimers",
     [("timer_cancel", {"all": True, "name": ""})]),
    ((SET_TIMER,), "Turn off the timer.", "HassCancelTimer", [("timer_cancel", {"name": ""})]),
    ((SET_TIMER,), "How long until the timer goes off?", "HassTimerStatus",
     [("timer_remaining", {"name": ""})]),
    ((), "Can you set a timer for like ten minutes?", "HassStartTimer",
     [("timer_set", {"seconds": 600, "name": ""})]),
    ((), "Set an alarm for 20 minutes.", "HassStartTimer",
     [("timer_set", {"seconds": 1200, "name": ""})]),
    ((), "Wake me up in half an hour.", "HassStartTimer",
     [("timer_set", {"seconds": 1800, "name": ""})]),
    ((), "Put a timer on for five minutes.", "HassStartTimer",
     [("timer_set", {"seconds": 300, "name": ""})]),
    ((), "Hey, set a timer for 3 minutes.", "HassStartTimer",
     [("timer_set", {"seconds": 180, "name": ""})]),
    ((), "Set the bed light at 40 percent.", "HassLightSet",
     [("device_brightness", {"device": "bed light", "percent": 40})]),
    ((), "Is the fan running?", "HassGetState", [("device_state", {"device": "ceiling fan"})]),
    ((), "Turn off every light.", "HassTurnOff",
     [("device_off", {"device": d}) for d in ("porch light", "kitchen light", "bed light",
                                              "standing light")]),
    ((SET_TIMER,), "Add a minute to the timer.", "HassIncreaseTimer",
     [("timer_adjust", {"seconds": 60, "name": ""})]),
    ((SET_TIMER,), "Take a minute off the timer.", "HassDecreaseTimer",
     [("timer_adjust", {"seconds": -60, "name": ""})]),
    ((SET_TIMER,), "Is the timer still running?", "HassTimerStatus",
     [("timer_remaining", {"name": ""})]),
    ((SET_TIMER,), "What's the timer?", "HassTimerStatus", [("timer_remaining", {"name": ""})]),
    ((), "What's the status of the porch light?", "HassGetState",
     [("device_state", {"device": "porch light"})]),
    ((), "Set the lights to 40 percent.", "HassLightSet",
     [("device_brightness", {"device": d, "percent": 40}) for d in ("porch light",
                                                                   "kitchen light", "bed light",
                                                                   "standing light")]),
    ((), "What's the time now?", "HassGetCurrentTime", [("time_now", {})]),
    ((), "What day of the week is it?", "HassGetCurrentDate", [("date_today", {})]),
    ((), "Add call mom to my to-do list.", "HassListAddItem",
     [("list_add", {"item": "call mom", "list": "todo"})]),
    ((), "Add bananas to the grocery list.", "HassListAddItem",
     [("list_add", {"item": "bananas", "list": "shopping"})]),
    ((SET_TIMER,), "Add 5 minutes.", "HassIncreaseTimer",
     [("timer_adjust", {"seconds": 300, "name": ""})]),
    ((SET_TIMER,), "Give it another two minutes.", "HassIncreaseTimer",
     [("timer_adjust", {"seconds": 120, "name": ""})]),
    (("Add eggs to the shopping list.",), "What's on the list?", "ApplianceListRead",
     [("list_read", {"list": "shopping"})]),
    ((), "I want you to turn off the kitchen light.", "HassTurnOff",
     [("device_off", {"device": "kitchen light"})]),
    ((), "Set a timer for a minute and thirty seconds.", "HassStartTimer",
     [("timer_set", {"seconds": 90, "name": ""})]),
    ((), "Set the timer to ten minutes.", "HassStartTimer",
     [("timer_set", {"seconds": 600, "name": ""})]),
    ((), "Dim the bed light to 30.", "HassLightSet",
     [("device_brightness", {"device": "bed light", "percent": 30})]),
    ((), "Do you know what time it is?", "HassGetCurrentTime", [("time_now", {})]),
    ((), "What date is it?", "HassGetCurrentDate", [("date_today", {})]),
    ((SET_TIMER,), "Turn the timer off.", "HassCancelTimer", [("timer_cancel", {"name": ""})]),
    ((SET_TIMER,), "End the timer.", "HassCancelTimer", [("timer_cancel", {"name": ""})]),
    ((SET_TIMER,), "Hold the timer.", "HassPauseTimer", [("timer_pause", {"name": ""})]),
    ((SET_TIMER,), "Is my timer running?", "HassTimerStatus",
     [("timer_remaining", {"name": ""})]),
    ((SET_TIMER,), "What's left on the timer?", "HassTimerStatus",
     [("timer_remaining", {"name": ""})]),
    ((), "8 minute pasta timer.", "HassStartTimer",
     [("timer_set", {"seconds": 480, "name": "pasta"})]),
    ((), "Set a timer for 8 minutes for the pasta.", "HassStartTimer",
     [("timer_set", {"seconds": 480, "name": "pasta"})]),
    (("Set a pasta timer for 8 minutes.",), "How long on the pasta timer?", "HassTimerStatus",
     [("timer_remaining", {"name": "pasta"})]),
    ((), "Set the bed light to max.", "HassLightSet",
     [("device_brightness", {"device": "bed light", "percent": 100})]),
    ((), "Can I get a timer for five minutes?", "HassStartTimer",
     [("timer_set", {"seconds": 300, "name": ""})]),
    ((), "What's the day today?", "HassGetCurrentDate", [("date_today", {})]),
    ((), "Set a timer for an hour and 15 minutes.", "HassStartTimer",
     [("timer_set", {"seconds": 4500, "name": ""})]),
    ((), "Set a timer for 1 minute 30.", "HassStartTimer",
     [("timer_set", {"seconds": 90, "name": ""})]),
    ((), "Set a timer for a quarter of an hour.", "HassStartTimer",
     [("timer_set", {"seconds": 900, "name": ""})]),
    ((SET_TIMER,), "How much time do I have left?", "HassTimerStatus",
     [("timer_remaining", {"name": ""})]),
    ((SET_TIMER,), "When will the timer go off?", "HassTimerStatus",
     [("timer_remaining", {"name": ""})]),
    ((), "Shut off the kitchen light.", "HassTurnOff",
     [("device_off", {"device": "kitchen light"})]),
    ((), "Stop the fan.", "HassTurnOff", [("device_off", {"device": "ceiling fan"})]),
    ((), "Kill the lights.", "HassTurnOff",
     [("device_off", {"device": d}) for d in ("porch light", "kitchen light", "bed light",
                                              "standing light")]),
    ((), "Set the lights to half.", "HassLightSet",
     [("device_brightness", {"device": d, "percent": 50}) for d in ("porch light",
                                                                   "kitchen light", "bed light",
                                                                   "standing light")]),
    (("Add eggs to the shopping list.",), "Take eggs off the list.",
     "HassShoppingListCompleteItem", [("list_complete", {"item": "eggs", "list": "shopping"})]),
    (("Add eggs to the shopping list.",), "What do I need to buy?", "ApplianceListRead",
     [("list_read", {"list": "shopping"})]),
    # A number said twice over as people hesitate: once, not added up (it was 20 minutes).
    ((), "Set a timer for ten, ten minutes.", "HassStartTimer",
     [("timer_set", {"seconds": 600, "name": ""})]),
]  # fmt: skip


@pytest.mark.parametrize(("before", "text", "intent", "calls"), FAMILIES,
                         ids=[f[1] for f in FAMILIES])  # fmt: skip
def test_each_intent_family_runs_its_tools(home, before, text, intent, calls):
    *_, handled = home.say(*before, text)
    turn = len(before) + 1
    assert handled is not None and handled.handler == "intents", text
    (found,) = home.of("intent", turn)
    assert (found.intent, found.path, found.score) == (intent, "library", 1.0), found
    ran = [(a.tool, a.arguments) for a in home.of("action", turn)]
    assert ran == calls, handled.reply
    assert all(a.ok and a.path == "intent" for a in home.of("action", turn)), handled.reply
    assert handled.reply and not handled.follow_up


@pytest.mark.parametrize(
    "text",
    [
        "Are the lights on?",
        "Are the kitchen lights on?",
        "Is the porch light on?",
        "Are the lights off in the kitchen?",
    ],
)
def test_a_yes_no_question_about_lights_never_switches_them(home, text):
    """ "are the lights on" once read as 'turn on the device called "are"'."""
    (handled,) = home.say(text)
    assert home.switched() == {} and home.of("intent")[0].intent == "HassGetState", handled
    assert [a.tool for a in home.of("action")] and all(
        a.tool == "device_state" for a in home.of("action")
    ), handled.reply


@pytest.mark.parametrize(
    "text",
    [
        "Why is the kitchen light on?",
        "Turn it on.",
        "Turn that off.",
        "The fan is off.",
        "I left the porch light on.",
    ],
)
def test_questions_and_pronouns_are_not_taken_for_a_misheard_name(home, text):
    """Not "Did you mean the bed light?" for "it": the handler leaves them (the language
    model and the claims check answer)."""
    (handled,) = home.say(text)
    assert handled is None and home.switched() == {}, handled


@pytest.mark.parametrize(
    "text", ["The kitchen light is on.", "The bed light is off.", "The porch light's on.",
             "Porch light on.", "The porsh light is off."],
)  # fmt: skip
def test_a_device_named_without_a_verb_is_asked_about_never_switched(home, text):
    """ "The kitchen light is on" was read as "the kitchen light on" (a name heard as
    "kitchen light is") and switched it: said of a device, or a question whose first word
    whisper lost, it is asked about at most."""
    (handled,) = home.say(text)
    assert home.switched() == {} and not any(a.ok for a in home.of("action")), handled


@pytest.mark.parametrize(
    "text", ["Turn on the porch light tomorrow.", "Turn off the bed light at 7.",
             "Set the bed light to 50 percent tonight.", "Turn on the porridge light tomorrow.",
             "Turn on the porch light every evening.", "Turn off the porch light in an hour.",
             "Turn on the bed light in 10 minutes."],
)  # fmt: skip
def test_a_device_at_a_later_time_is_answered_honestly_and_nothing_runs(home, text):
    """Given to the language model, "turn on the porch light tomorrow" switched the light
    on at once (a bench run with the bias prompt)."""
    (handled,) = home.say(text)
    assert handled is not None and handled.reply.startswith("I can only do that now"), handled
    assert home.switched() == {} and not any(a.ok for a in home.of("action"))  # refusals


@pytest.mark.parametrize(
    "text", ["Set an alarm for 7 am.", "Wake me up at six thirty.", "Set an alarm."]
)
def test_an_alarm_at_a_time_of_day_is_answered_honestly_and_no_timer_is_set(home, text):
    """Left to the language model, "set an alarm for 7 am" would be claimed done."""
    (handled,) = home.say(text)
    assert handled is not None and handled.reply.startswith("I can't set an alarm"), handled
    assert "set a timer for" in handled.reply
    assert not any(a.ok for a in home.of("action"))


@pytest.mark.parametrize(
    ("cut_short", "asked", "answer", "ran"),
    [("Set a timer for", "For how long?", "Ten minutes.",
      ("timer_set", {"seconds": 600, "name": ""})),
     ("Set a timer.", "For how long?", "For 5 minutes.",
      ("timer_set", {"seconds": 300, "name": ""})),
     ("Set a pasta timer.", "For how long?", "8 minutes",
      ("timer_set", {"seconds": 480, "name": "pasta"})),
     ("Start the timer.", "For how long?", "Two minutes.",
      ("timer_set", {"seconds": 120, "name": ""})),
     ("Turn off the", "Turn off what?", "The kitchen light.",
      ("device_off", {"device": "kitchen light"})),
     ("Set the porch light to", "To what brightness?", "50 percent.",
      ("device_brightness", {"device": "porch light", "percent": 50})),
     ("Put them on my shopping list.", "What should I put on your shopping list?", "Eggs.",
      ("list_add", {"item": "eggs", "list": "shopping"}))],
)  # fmt: skip
def test_a_command_cut_short_asks_for_what_is_missing_and_the_answer_completes_it(
    home, cut_short, asked, answer, ran
):
    """A pause taken for the end of the turn ("set a timer for … ten minutes"): nothing
    runs on half a command; the question opens the follow-up and the answer finishes it."""
    question, done = home.say(cut_short, answer)
    assert question.reply == asked and question.follow_up
    assert [(a.tool, a.arguments) for a in home.of("action", 2) if a.ok] == [ran], done.reply
    assert not any(a.ok for a in home.of("action", 1))


@pytest.mark.parametrize("answer", ["No.", "Never mind."])
def test_a_command_cut_short_can_be_dropped(home, answer):
    _, dropped = home.say("Set a timer for", answer)
    assert dropped.reply == "OK." and home.actions.timers.active() == []


def test_an_answer_that_completes_nothing_is_a_request_of_its_own(home):
    _, other = home.say("Turn on the", "What time is it?")
    assert [a.tool for a in home.of("action", 2)] == ["time_now"], other
    _, whole = home.say("Set a timer for", "Cancel the timer.")  # "cancel…" is no "no"
    assert [a.tool for a in home.of("action", 2)] == ["timer_cancel"], whole


def test_which_one_answered_with_the_kitchen_one_is_never_a_brightness(home):
    """The library reads "the kitchen one" as "the kitchen light to 1 percent"."""
    (handled,) = home.say("The kitchen one.")
    assert handled is None and home.switched() == {}


def test_several_devices_answer_in_one_sentence(home):
    *_, asked = home.say("Turn off the lights.", "Turn on the porch light.", "Are the lights on?")
    assert asked.reply == ("The porch light is on; the kitchen light, the bed light and the "
                           "standing light are off."), asked.reply  # fmt: skip
    (dimmed,) = home.say("Set the lights to 40 percent.")
    assert dimmed.reply == ("The porch light, the kitchen light, the bed light and the standing "
                            "light are at 40 percent."), dimmed.reply  # fmt: skip


@pytest.mark.parametrize(
    ("ask", "answer", "ran"),
    [("Cancel the timer.", "The pasta one.", ("timer_cancel", {"name": "pasta"})),
     ("Cancel the timer.", "Tea.", ("timer_cancel", {"name": "tea"})),
     ("Pause the timer.", "The tea timer.", ("timer_pause", {"name": "tea"}))],
)  # fmt: skip
def test_which_timer_is_asked_and_the_answer_names_it(home, ask, answer, ran):
    *_, question, done = home.say(
        "Set a pasta timer for 10 minutes.", "Set a tea timer for 3 minutes.", ask, answer
    )
    assert question.follow_up and question.reply.startswith("Which timer do you want to")
    assert "the tea timer or the pasta timer" in question.reply
    assert [(a.tool, a.arguments) for a in home.of("action", 4) if a.ok] == [ran], done.reply


def test_it_is_the_one_timer(home):
    replies = home.say("Set a timer for ten minutes.", "Pause it.", "Resume it.", "Cancel it.")
    ran = [a.tool for a in home.of("action") if a.ok]
    assert ran == ["timer_set", "timer_pause", "timer_resume", "timer_cancel"], replies
    (nothing,) = home.say("Cancel it.")
    assert nothing.reply == "You have no timer."


def test_emptying_a_list_is_asked_first(home):
    *_, asked, emptied = home.say(
        "Add milk to my shopping list.", "Clear my shopping list.", "Yes."
    )
    assert asked.follow_up and asked.reply == "Do you want me to empty your shopping list?"
    assert emptied.reply == "Emptied your shopping list: one item taken off."
    assert home.actions.lists.items("shopping") == []
    *_, declined = home.say("Add milk to my shopping list.", "Empty the list.", "No.")
    assert declined.reply == "OK, I won't." and home.actions.lists.items("shopping") == ["milk"]


def test_the_lights_are_every_light(home):
    (handled,) = home.say("Turn on the lights.")
    assert {a.arguments["device"] for a in home.of("action") if a.ok} == {
        "porch light", "kitchen light", "bed light", "standing light"}, handled.reply  # fmt: skip


def test_a_correction_does_not_bend_a_misheard_timer_name_into_another_name(home):
    """ "and two minutes to the past a timer": "and" is "add" and "past a" the pasta timer;
    not "the last a timer" (the spelling correction of "past")."""
    _, added = home.say("Set a pasta timer for 10 minutes.", "And two minutes to the past a timer.")
    assert added.reply.startswith("Added two minutes to the pasta timer"), added.reply
    (found,) = home.of("intent", 2)
    assert found.slots.get("name") == "pasta", found


@pytest.mark.parametrize("text", ["Forget it.", "Cancel that.", "Nothing."])
def test_more_ways_to_say_never_mind(home, text):
    (handled,) = home.say(text)
    assert home.of("intent")[0].intent == "HassNevermind" and home.of("action") == []


def test_the_replies_say_what_was_done(home):
    on, bright, timer, sum_, listed, read = home.say(
        "Turn on the porch light.",
        "Set the kitchen light to 30 percent.",
        "Set a pasta timer for 10 minutes.",
        "What's seventeen times twenty three?",
        "Add milk to my shopping list.",
        "What's on my shopping list?",
    )
    assert on.reply == "The porch light is on."
    assert bright.reply == "The kitchen light is at 30 percent."
    assert timer.reply == "OK, pasta timer for ten minutes, starting now."
    assert sum_.reply == "17 times 23 is 391."
    assert listed.reply == "Added milk to your shopping list."
    assert read.reply.startswith("Your shopping list has ") and "milk" in read.reply
    assert home.switched() == {
        "porch light": [("on", True)], "kitchen light": [("brightness", 0.3)],
    }  # fmt: skip


def test_what_the_board_cannot_do_is_answered_honestly(home):
    colour, weather, never = home.say(
        "Set the kitchen light to blue.", "What's the weather like?", "Never mind."
    )
    assert colour.reply == (
        "I can't change the colour of the kitchen light; I can only dim it or turn it on and off."
    )
    assert weather.reply == (
        "I have no weather source on this device, so I can't tell you the weather."
    )
    assert never.reply == "" and never.action == "HassNevermind"
    assert [e.intent for e in home.of("intent")] == [
        "HassLightSet", "HassGetWeather", "HassNevermind",
    ]  # fmt: skip
    # The colour is a refused call (logged); the weather and "never mind" run nothing.
    assert [(a.tool, a.ok) for a in home.of("action")] == [("device_color", False)]
    assert home.switched() == {}


@pytest.mark.parametrize(
    "text",
    ["What is the weather like in Paris?", "What's the weather in London today?",
     "Is it going to rain tomorrow?", "Will it snow in Oslo this weekend?",
     "How cold is it outside?", "What's the forecast for tomorrow?"],
)  # fmt: skip
def test_weather_anywhere_is_answered_honestly_not_invented(home, text):
    """The library knows the weather of the house's own weather entities only; a place
    it does not know went to the small model, which made up a forecast."""
    (answer,) = home.say(text)
    assert answer.reply == (
        "I have no weather source on this device, so I can't tell you the weather."
    )
    assert [e.intent for e in home.of("intent")] == ["HassGetWeather"]


def test_a_question_about_temperature_that_is_no_weather_is_left_to_the_model(home):
    (answer,) = home.say("What is the temperature of the sun?")
    assert answer is None and home.of("intent") == []  # not handled: the model answers


@pytest.mark.parametrize(
    "text", ["Cancel the ten minute timer.", "Pause the ten minute timer.",
             "How long is left on the ten minute timer?"],
)  # fmt: skip
def test_a_timer_named_by_its_length_is_the_one_acted_on(home, text):
    *_, handled = home.say("Set a timer for ten minutes.", "Set a timer for five minutes.", text)
    (action,) = home.of("action", 3)
    assert action.ok, handled.reply
    assert "ten minute" in handled.reply and "five minute" not in handled.reply, handled.reply


@pytest.mark.parametrize(
    "text", ["What's the timer status?", "What is my timer status?", "How is my timer?"]
)
def test_a_question_about_the_timer_is_not_read_as_its_name(home, text):
    """The library reads "what's the" in "what's the timer status" as a timer's name."""
    _, handled = home.say(SET_TIMER, text)
    assert handled is not None and handled.reply.startswith("Five minutes left"), handled


# ---- misheard names and words ----------------------------------------------------------------


def test_a_plural_or_slightly_misheard_name_acts_at_once(home):
    (handled,) = home.say("turn on the standing lights")
    assert handled.reply == "The standing light is on." and not handled.follow_up
    assert home.switched() == {"standing light": [("on", True)]}
    (found,) = home.of("intent")
    # "standing" names it too (its name without the kind), so the library may match as said
    assert found.path in ("library", "fuzzy") and found.score >= ACT_SCORE, found
    assert found.slots["name"] in ("standing light", "standing")


def test_a_middling_name_is_asked_about_and_yes_runs_it(home):
    question, yes = home.say("turn on the porridge light", "yes")
    assert question.reply == "Did you mean the porch light?" and question.follow_up
    assert yes.reply == "The porch light is on."
    assert home.switched() == {"porch light": [("on", True)]}
    asked, confirmed = home.of("intent")
    assert asked.path == confirmed.path == "confirm" and asked.score < ACT_SCORE
    assert asked.slots["name"] == "porch light"
    assert [(a.tool, a.arguments, a.turn) for a in home.of("action")] == [
        ("device_on", {"device": "porch light"}, 2)
    ]


@pytest.mark.parametrize("answer", ["Uh, yes.", "Mm-hmm.", "Go for it.", "Yeah, yeah."])
def test_everyday_ways_of_saying_yes_run_it(home, answer):
    _, yes = home.say("turn on the porridge light", answer)
    assert yes is not None and yes.reply == "The porch light is on.", yes
    assert home.switched() == {"porch light": [("on", True)]}


@pytest.mark.parametrize(
    ("answer", "switched"),
    [("No, the bed light.", {"bed light": [("on", True)]}),
     # A request of its own, not the question's command on another device (it turned the
     # kitchen light on).
     ("No, turn off the kitchen light.", {"kitchen light": [("on", False)]}),
     ("No, turn on the bed light.", {"bed light": [("on", True)]}),
     ("Not that one.", {}), ("No, the porch light.", {})],
)  # fmt: skip
def test_a_no_that_names_another_device_runs_it_for_that_one(home, answer, switched):
    """ "Did you mean the porch light?" "No, the bed light.": it was "OK, I won't." and
    the person had to say it all again."""
    _, no = home.say("turn on the porridge light", answer)
    assert no is not None and home.switched() == switched, no
    if not switched:
        assert no.reply == "OK, I won't."


@pytest.mark.parametrize(
    ("answer", "name"), [("No, egg.", "egg"), ("No, an egg timer.", "egg"), ("No.", None)]
)
def test_a_no_that_names_the_timer_sets_it_with_that_name(home, answer, name):
    """ "Set an end timer for 4 minutes" (whisper's "egg") is asked about; "no, egg" was
    "OK, I won't."."""
    question, no = home.say("Set an end timer for 4 minutes.", answer)
    assert question.reply == "Did you mean a timer called end, for four minutes?"
    ran = [a.arguments for a in home.of("action", 2) if a.ok]
    assert ran == ([{"seconds": 240, "name": name}] if name else []), no


def test_a_name_that_only_sounds_like_a_device_is_asked_about(home):
    """ "porridge light on": 'porridge' is spelled unlike 'porch' (46 %), but sounds
    like it (espeak-ng's phonemes, folded): asked, never switched at once."""
    question, yes = home.say("porridge light on", "yes")
    assert question.reply == "Did you mean the porch light?", question.reply
    assert yes.reply == "The porch light is on."
    assert home.switched() == {"porch light": [("on", True)]}
    assert home.of("intent")[0].score < ACT_SCORE


def test_a_command_word_that_only_sounds_like_one_is_asked_about(home):
    """ "post the timer" (whisper, for "pause the timer")."""
    _, question, yes = home.say(SET_TIMER, "Post the timer.", "yes")
    assert question.reply == "Did you mean: pause the timer?", question.reply
    assert yes.action == "timer_pause" and yes.reply.startswith("Paused"), yes.reply


def test_and_heard_for_add_is_asked_about_and_other_sentences_starting_with_and_are_not(home):
    """Whisper often writes "add" as "and" at the start; "And of Germany?" stays a question."""
    question, yes = home.say("And milk to the shopping list.", "yes")
    assert question.reply == "Did you mean: add milk to the shopping list?", question.reply
    assert yes.action == "list_add", (yes.action, yes.reply)
    for text in ("And of Germany?", "And tell me a joke.", "And the kitchen light."):
        assert home.actions.recognizer.recognize(text) is None, text


@pytest.mark.parametrize(
    "text",
    ["What is the speed of light?", "Tell me about the porch.", "Tell me a joke.",
     "What is the capital of France?", "How do I change a light bulb?"],
)  # fmt: skip
def test_free_questions_near_a_device_name_go_to_the_language_model(home, text):
    """Not asked about ("Did you mean the bed light?"), not answered by the handler."""
    (handled,) = home.say(text)
    assert handled is None, handled
    assert home.of("intent") == [] and home.switched() == {}


def test_sounds_fold_what_a_small_speech_model_confuses():
    sounds = SoundsLike("en")
    assert sounds.available  # piper-tts (the voice) carries espeak-ng
    assert sounds.key("porch") == sounds.key("porch")
    near = {(a, b): fuzz.ratio(sounds.key(a), sounds.key(b)) for a, b in
            [("porridge", "porch"), ("post", "pause"), ("garage light", "bed light")]}  # fmt: skip
    assert near[("porridge", "porch")] >= 80 and near[("post", "pause")] >= 80, near
    assert near[("garage light", "bed light")] < 80, near
    assert fold("pˈɔːɹtʃ lˈaɪt") == fold("pˈɔɹdʒ lˈaɪd")  # stress, length, voicing


def test_without_espeak_names_are_matched_by_spelling_only(monkeypatch):
    monkeypatch.setattr(phonetic, "_bridge", lambda: None)
    recognizer = Recognizer(load_library("en"), configs(HOME))
    assert recognizer.recognize("porridge light on") is None or (
        recognizer.recognize("porridge light on").slots.get("name") != "porch light"
    )
    found = recognizer.recognize("turn on the porsche light")
    assert found is not None and found.slots["name"] == "porch light"


@pytest.mark.parametrize("answer", ["no", "never mind"])
def test_a_middling_name_answered_no_switches_nothing(home, answer):
    question, no, later = home.say("turn on the porridge light", answer, "yes")
    assert question.follow_up
    assert no.reply == "OK, I won't."
    # The question is gone: the later "yes" is not taken for it.
    assert later is None or "porch" not in later.reply
    assert home.switched() == {} and home.of("action", 2) == []


def test_a_misheard_word_is_asked_about_and_yes_runs_it(home):
    """ "cancel tiger" (whisper's "cancel timer"): asked, and "yes" cancels."""
    _, question, yes = home.say(SET_TIMER, "cancel tiger", "yes")
    assert question.follow_up and "timer" in question.reply.lower(), question.reply
    assert yes.action == "timer_cancel" and yes.reply.startswith("Cancelled"), yes.reply
    assert home.actions.timers.active() == []


def test_a_device_the_house_lacks_switches_nothing_and_claims_nothing(home):
    (handled,) = home.say("turn on the garage light")
    assert handled.reply == "I don't know a device called garage light."
    assert home.switched() == {}
    assert [(a.tool, a.ok) for a in home.of("action")] == [("device_on", False)]


def test_which_light_is_asked_and_the_answer_completes_it(home):
    question, answer = home.say("turn on the light", "the kitchen one")
    assert question.follow_up and question.reply.startswith("Which light: ")
    for name in ("porch light", "kitchen light", "bed light", "standing light"):
        assert f"the {name}" in question.reply
    assert answer.reply == "The kitchen light is on."
    assert home.switched() == {"kitchen light": [("on", True)]}


# ---- the intent event and the audit log -----------------------------------------------------


def test_the_intent_event_and_the_audit_log_carry_the_intent(home):
    home.say("Turn on the porch light.", "turn on the porridge light", "yes")
    first, asked, confirmed = home.of("intent")
    assert (first.intent, first.slots, first.score, first.path, first.text) == (
        "HassTurnOn", {"name": "porch light", "domain": "light"}, 1.0, "library",
        "turn on the porch light",
    )  # fmt: skip
    assert (asked.intent, confirmed.path) == ("HassTurnOn", "confirm")
    logged = home.actions.audit.entries(limit=2)
    assert [(e.tool, e.path, e.transcript) for e in logged] == [
        ("device_on", "intent", "Turn on the porch light."), ("device_on", "intent", "yes"),
    ]  # fmt: skip
    assert json.loads(logged[0].intent) == {
        "intent": "HassTurnOn", "slots": {"name": "porch light", "domain": "light"},
        "score": 1.0, "path": "library",
    }  # fmt: skip
    confirmed_json = json.loads(logged[1].intent)
    assert confirmed_json["path"] == "confirm" and confirmed_json["score"] == asked.score


# ---- never the wrong device --------------------------------------------------------------

MISHEARD = [
    ("turn on the porsche light", "porch light"),
    ("turn on the port light", "porch light"),
    ("turn on the porch lights", "porch light"),
    ("turn on the torch light", "porch light"),
    ("turn on the porridge light", "porch light"),
    ("turn off the porch life", "porch light"),
    ("turn on the perch fan", "porch fan"),
    ("turn on the pouch fan", "porch fan"),
    ("turn on the porch van", "porch fan"),
    ("turn on the porch fans", "porch fan"),
    ("turn on the kitchen flight", "kitchen light"),
    ("turn on the chicken light", "kitchen light"),
    ("turn on the kitten light", "kitchen light"),
    ("turn on the kitchen lump", "kitchen lamp"),
    ("turn on the kitchen lamb", "kitchen lamp"),
    ("turn on the bet light", "bed light"),
    ("turn on the bad light", "bed light"),
    ("turn on the beds light", "bed light"),
    ("turn off the bed lights", "bed light"),
    ("turn on the bedroom lamb", "bedroom lamp"),
    ("turn on the bedroom lump", "bedroom lamp"),
    ("switch off the bedroom lamp please", "bedroom lamp"),
]


@pytest.mark.parametrize(("text", "meant"), MISHEARD)
def test_a_misheard_name_never_switches_another_device(similar, text, meant):
    """It may act, ask or refuse; if it acts (or asks and is told "yes") it is on the
    device meant, and only on it."""
    handled, yes = similar.say(text, "yes")
    assert handled is not None, text
    asked = re.fullmatch(r"Did you mean the (.+)\?", handled.reply)
    if asked:
        assert asked.group(1) == meant, handled.reply
    assert set(similar.switched()) <= {meant}, (handled.reply, similar.switched())
    assert all(a.arguments.get("device", meant) == meant for a in similar.of("action"))


@pytest.mark.parametrize("text", ["cut the kitchen light", "kill the kitchen light"])
def test_a_verb_the_library_lacks_never_turns_the_light_on(similar, text):
    """The verb is not read as part of the name ("[the] {name}" takes any words): it
    would be "kitchen light" at 0.87, and turned on."""
    _, yes = similar.say(text, "yes")
    assert similar.switched() == {}, (text, yes)


# ---- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "...", " . ? "])
def test_an_empty_transcript_is_nothing(home, recognizer, text):
    assert recognizer.recognize(text) is None
    assert home.say(text) == [None]
    assert home.of("intent") == [] and home.of("action") == []


def test_a_long_transcript_is_not_a_command(home, recognizer):
    """Whisper looping or a story: 200 words are not matched at all (MAX_WORDS)."""
    text = " ".join(["turn on the porch light"] * 40)
    assert len(text.split()) == 200 > MAX_WORDS
    started = time.perf_counter()
    assert recognizer.recognize(text) is None
    assert home.say(text) == [None]
    elapsed = time.perf_counter() - started
    print(f"200 words: {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0  # a guard against a pathological match, not a speed figure
    assert home.switched() == {}


def test_devices_named_like_the_librarys_words_still_work(tmp_path):
    """ "timer" and "all" are names the config allows; the library's own sentences with
    those words keep their meaning."""
    checked = DeviceList.from_toml(
        [{"name": "timer", "kind": "switch", "gpio": {"pin": 5}},
         {"name": "all", "kind": "switch", "gpio": {"pin": 6}}], "devices",
    )  # fmt: skip
    assert [d.name for d in checked] == ["timer", "all"]
    specs = (("timer", "switch", "kitchen", ()), ("all", "switch", "", ()),
             ("porch light", "light", "outside", ()))  # fmt: skip
    with running(House(tmp_path, specs)) as house:
        on, timer, off_timer, lights, everything = house.say(
            "Turn on the timer.",
            "Set a timer for 5 minutes.",
            "Turn off the timer.",
            "Turn off all the lights.",
            "Turn on all.",
        )
        assert on.reply == "The timer is on."
        assert timer.reply == "OK, five minutes, starting now."
        assert len(house.actions.timers.active()) == 1  # the device's "off" left it alone
        assert off_timer.reply == "The timer is off."
        assert lights.reply == "The porch light is off."
        assert everything.reply == "The all is on."
        assert house.switched() == {
            "timer": [("on", True), ("on", False)],
            "porch light": [("on", False)],
            "all": [("on", True)],
        }


def test_timers_of_zero_and_ten_years_are_refused_with_the_reason(home):
    zero, decade = home.say("Set a timer for zero minutes.", "Set a timer for ten years.")
    assert zero.reply == (
        "A timer needs a length. Say, for example, 'set a timer for ten minutes'."
    )
    assert decade.reply == "That's too long: the longest timer I can set is twenty four hours."
    assert home.actions.timers.active() == [] and home.of("timer") == []
    assert [(a.tool, a.ok) for a in home.of("action")] == [("timer_set", False)] * 2


def test_a_brightness_of_300_percent_is_refused_and_the_light_left_alone(home):
    level = home.backends["bed light"].level
    (handled,) = home.say("Set the bed light to 300 percent.")
    assert handled.reply == (
        "Brightness goes from 0 to 100 percent, so I left the bed light as it was."
    )
    assert home.switched() == {}
    assert home.backends["bed light"].level == level
    assert [(a.tool, a.ok) for a in home.of("action")] == [("device_brightness", False)]


def test_five_hundred_devices(capsys):
    """Lamp 1 … lamp 500 in 50 rooms. The times are printed, not checked (the bench
    measures speed); the matches are checked."""
    devices = [
        DeviceConfig(f"lamp {i}", "lamp", (), f"room {i % 50}", mqtt={"command_topic": str(i)})
        for i in range(1, 501)
    ]
    started = time.perf_counter()
    big = Recognizer(load_library("en"), devices)
    built = time.perf_counter() - started
    big.warm_up()
    expected = {
        "turn on lamp 17": ("HassTurnOn", {"name": "lamp 17"}),
        "turn off lamp 500": ("HassTurnOff", {"name": "lamp 500"}),
        "set lamp 42 to 30 percent": ("HassLightSet", {"name": "lamp 42", "brightness": 30}),
        "is lamp 9 on": ("HassGetState", {"name": "lamp 9"}),
        "turn off the lights in room 3": ("HassTurnOff", {"area": "room 3"}),
        "turn on the lamp 250": ("HassTurnOn", {"name": "lamp 250"}),
    }
    timings = []
    for text, (intent, slots) in expected.items():
        started = time.perf_counter()
        found = big.recognize(text)
        timings.append((text, time.perf_counter() - started))
        assert found is not None and found.intent == intent, (text, found)
        assert {k: found.slots[k] for k in slots} == slots, (text, found.slots)
        assert found.score == 1.0
    with capsys.disabled():
        print(f"\n500 devices: recognizer built in {built * 1000:.0f} ms")
        for text, seconds in timings:
            print(f"  {seconds * 1000:6.1f} ms  {text}")


# ---- the sentence library itself -----------------------------------------------------------


@pytest.fixture
def uncached_library():
    """`load_library` is cached per language: each of these tests loads afresh, and the
    tests after it load the real file again."""
    load_library.cache_clear()
    yield
    load_library.cache_clear()


def test_a_corrupt_library_file_names_the_package(tmp_path, monkeypatch, uncached_library):
    import home_assistant_intents

    (tmp_path / "en.json").write_text('{"language": "en", "intents": {', encoding="utf-8")
    monkeypatch.setattr(home_assistant_intents, "_DATA_DIR", tmp_path)
    with pytest.raises(ModelError, match="home-assistant-intents") as err:
        load_library("en")
    assert "not valid JSON" in str(err.value) and "reinstall" in str(err.value)
    (tmp_path / "en.json").write_text('{"language": "en"}', encoding="utf-8")
    with pytest.raises(ModelError, match="home-assistant-intents.*damaged"):
        load_library("en")


def test_an_unreadable_library_file_names_the_package(monkeypatch, uncached_library):
    import home_assistant_intents

    def unreadable(language: str, json_load: Any = None) -> dict[str, Any]:
        raise PermissionError(f"[Errno 13] Permission denied: '{language}.json'")

    monkeypatch.setattr(home_assistant_intents, "get_intents", unreadable)
    with pytest.raises(ModelError, match="home-assistant-intents.*cannot be read") as err:
        load_library("en")
    assert "Permission denied" in str(err.value) and "reinstall" in str(err.value)


def test_a_missing_library_file_names_the_package(tmp_path, monkeypatch, uncached_library):
    import home_assistant_intents

    monkeypatch.setattr(home_assistant_intents, "_DATA_DIR", tmp_path)  # no en.json in it
    with pytest.raises(ModelError, match="home-assistant-intents"):
        load_library("en")


def test_a_missing_library_file_says_how_to_restore_it(tmp_path, monkeypatch, uncached_library):
    import home_assistant_intents

    monkeypatch.setattr(home_assistant_intents, "_DATA_DIR", tmp_path)
    with pytest.raises(ModelError, match="reinstall"):
        load_library("en")


def test_an_unknown_language_names_the_choice(uncached_library):
    with pytest.raises(ModelError) as err:
        load_library("xx")
    message = str(err.value)
    assert "home-assistant-intents" in message and "'xx'" in message
    assert re.search(r"\ben\b", message) and re.search(r"\bde\b", message), message
    assert "conversation.language" in message


# ---- the audit log from before intents ------------------------------------------------------

OLD_AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    origin TEXT NOT NULL,
    path TEXT NOT NULL,
    turn INTEGER NOT NULL,
    transcript TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    ok INTEGER NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_time ON actions(time);
CREATE TRIGGER IF NOT EXISTS actions_append_only BEFORE UPDATE ON actions
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
"""The audit log's table before the intent column (commit 850384a)."""


def test_an_audit_log_from_before_intents_opens_and_appends(tmp_path):
    path = tmp_path / "audit.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(OLD_AUDIT_SCHEMA)
        db.execute(
            "INSERT INTO actions (time, origin, path, turn, transcript, tool, arguments, ok,"
            " result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (1_800_000_000.0, "voice", "fast", 1, "turn on the porch light", "device_on",
             '{"device": "porch light"}', 1, "The porch light is on."),
        )  # fmt: skip
        db.commit()
    log = AuditLog(path)
    assert log.problem is None
    log.append(AuditEntry(1_800_000_001.0, "voice", "intent", 2, "turn it off", "device_off",
                          {"device": "porch light"}, True, "The porch light is off.",
                          '{"intent": "HassTurnOff"}'))  # fmt: skip
    assert [(e.path, e.tool, e.intent) for e in log.entries()] == [
        ("fast", "device_on", ""), ("intent", "device_off", '{"intent": "HassTurnOff"}'),
    ]  # fmt: skip
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        log._db.execute("UPDATE actions SET ok = 0")
    log.close()
    # The appliance on that data directory records its intents in the old file.
    with running(House(tmp_path, HOME)) as house:
        house.say("Turn on the porch light.")
        assert house.actions.audit.problem is None
    entries = AuditLog(path).entries()
    assert len(entries) == 3
    assert json.loads(entries[-1].intent)["intent"] == "HassTurnOn"


# ---- another language ------------------------------------------------------------------------

GERMAN: tuple[Spec, ...] = (
    ("Stehlampe", "lamp", "Wohnzimmer", ()),
    ("Deckenlicht", "light", "Küche", ()),
)


def test_german_sentences_recognise_german_device_names():
    german = Recognizer(load_library("de"), configs(GERMAN))
    for text, intent, slots in [
        ("Schalte die Stehlampe ein.", "HassTurnOn", {"name": "Stehlampe"}),
        ("Schalte die Stehlampe aus.", "HassTurnOff", {"name": "Stehlampe"}),
        ("Mach das Deckenlicht an.", "HassTurnOn", {"name": "Deckenlicht"}),
        ("Schalte das Licht im Wohnzimmer an.", "HassTurnOn",
         {"area": "wohnzimmer", "domain": "light"}),
        ("Schalte das Licht in der Küche aus.", "HassTurnOff",
         {"area": "küche", "domain": "light"}),
        ("Stelle einen Timer auf 10 Minuten.", "HassStartTimer", {"minutes": 10}),
    ]:  # fmt: skip
        found = german.recognize(text)
        assert found is not None and found.intent == intent, (text, found)
        assert {k: found.slots[k] for k in slots} == slots, (text, found.slots)
    assert german.device_for("stehlampe") == "Stehlampe"


def test_german_commands_switch_the_device_and_answer_in_german(tmp_path):
    """The handler answers a done command with the library's own German reply."""
    with running(House(tmp_path, GERMAN, language="de")) as house:
        on, room_off = house.say(
            "Schalte die Stehlampe ein.", "Schalte das Licht im Wohnzimmer aus."
        )
        assert house.switched() == {"Stehlampe": [("on", True), ("on", False)]}
    assert on.reply == "Licht eingeschaltet" and on.action == "device_on"
    assert room_off.reply == "Licht ausgeschaltet"


@pytest.mark.parametrize(
    ("text", "ran"),
    [("Turn off the kitchen light and the porch light.",
      [("device_off", {"device": "kitchen light"}), ("device_off", {"device": "porch light"})]),
     ("Turn on the porch light and set a timer for ten minutes.",
      [("device_on", {"device": "porch light"}), ("timer_set", {"seconds": 600, "name": ""})]),
     ("Set a timer for one hour and 30 minutes, and then turn off the fan.",
      [("timer_set", {"seconds": 5400, "name": ""}), ("device_off", {"device": "ceiling fan"})])],
)  # fmt: skip
def test_two_commands_in_one_request_both_run_and_each_is_said(home, text, ran):
    """ "Turn off the kitchen light and the porch light" matched nothing (one intent per
    sentence) and went to the language model."""
    (handled,) = home.say(text)
    assert [(a.tool, a.arguments) for a in home.of("action") if a.ok] == ran, handled
    assert handled is not None and handled.reply.count(".") >= 2 and not handled.follow_up
    assert len(home.of("intent")) == len(ran)


@pytest.mark.parametrize(
    "text", ["What is the difference between a frog and a toad?",
             "Turn on the porch light and don't turn on the bed light.",
             "I turned off the light and the fan.",
             "Turn on the porsh light and the kitchen light."],
)  # fmt: skip
def test_a_request_with_an_and_that_is_not_all_sure_commands_does_nothing_at_once(home, text):
    """A half-understood compound is not half done: the whole request is handled as one
    (asked about, or left to the language model)."""
    (handled,) = home.say(text)
    assert home.switched() == {} and not any(a.ok for a in home.of("action")), handled


@pytest.mark.parametrize(
    ("before", "text", "ran"),
    [("Turn on the kitchen light.", "Turn it off.", ("device_off", {"device": "kitchen light"})),
     ("Turn on the bed light.", "Dim it to 20 percent.",
      ("device_brightness", {"device": "bed light", "percent": 20})),
     ("Turn on the kitchen light.", "Turn that off.",
      ("device_off", {"device": "kitchen light"}))],
)  # fmt: skip
def test_it_is_the_device_a_command_just_switched(home, before, text, ran):
    *_, handled = home.say(before, text)
    assert [(a.tool, a.arguments) for a in home.of("action", 2) if a.ok] == [ran], handled


@pytest.mark.parametrize("text", ["What is it?", "Is it going to rain?", "Turn it off."])
def test_it_means_no_device_when_none_was_just_switched_or_the_sentence_is_no_switch(home, text):
    """ "What is it?" after "turn on the kitchen light" is no question about the light;
    "turn it off" with no device switched before is left to the language model."""
    before = () if text == "Turn it off." else ("Turn on the kitchen light.",)
    *_, handled = home.say(*before, text)
    assert not any(a.ok for a in home.of("action", len(before) + 1)), handled


def test_it_means_the_device_only_for_a_while(tmp_path):
    house = House(tmp_path, HOME)
    now = [1000.0]
    house.actions.intents.clock = lambda: now[0]
    with running(house):
        house.say("Turn on the kitchen light.")
        now[0] += 121
        (handled,) = [house.run(house.actions.intents.handle("Turn it off.", 2))]
        assert handled is None and house.switched() == {"kitchen light": [("on", True)]}


def test_a_timer_length_without_its_unit_is_asked_about_in_minutes(home):
    question, yes = home.say("Set a timer for 5.", "Yes.")
    assert question.reply == "A timer for five minutes?" and question.follow_up
    assert [a.arguments for a in home.of("action", 2) if a.ok] == [{"seconds": 300, "name": ""}]


def test_a_length_after_and_is_never_a_second_timer():
    """With the whole request in doubt, "and 30 minutes" once took the first part's verb
    ("set a timer 30 minutes"): two timers for one length."""
    from appliance.understanding.compound import split_commands

    recognizer = Recognizer(load_library("en"), configs(HOME))

    def sure(part: str):
        found = recognizer.recognize(part, weigh=False)
        return found if found is not None and found.path == "library" else None

    assert split_commands("set a timer for one hour and 30 minutes", sure) is None
    assert split_commands("set a timer for one hour and thirty minutes", sure) is None
    parts = split_commands("turn off the kitchen light and the bedroom lights", sure)
    assert parts is not None and parts[1][1].slots == {"area": "bedroom", "domain": "light"}
    parts = split_commands("turn off the kitchen light and the porch light", sure)
    assert parts is not None and [p for p, _ in parts] == [
        "turn off the kitchen light",
        "turn off the porch light",
    ]


def test_a_part_without_its_verb_that_names_only_a_room_is_not_taken():
    """ "… and the bedroom" read "turn off the bedroom" would switch every device there."""
    from appliance.understanding.compound import split_commands

    readings = {
        "turn off the kitchen light": Recognition("HassTurnOff", {"name": "kitchen light"},
                                                  1.0, "library", "turn off the kitchen light"),
        "turn off the bedroom": Recognition("HassTurnOff", {"area": "bedroom"}, 1.0, "library",
                                            "turn off the bedroom"),
    }  # fmt: skip
    assert split_commands("turn off the kitchen light and the bedroom", readings.get) is None
