"""Tool calls by the language model: grammar-shaped JSON, checked against the words."""

from __future__ import annotations

import asyncio
import json

import pytest

from appliance import events as ev
from appliance.actions.devices import MemoryBackend
from appliance.actions.llm_tools import LlmToolCaller, call_schema
from appliance.actions.phrasing import MAX_TOKENS, check, facts_of
from appliance.actions.words import normalise, set_timer_name
from appliance.errors import GrammarUnsupportedError, LanguageModelError
from appliance.house import Actions
from appliance.llm.fake import ScriptedLlm
from appliance.sections.devices import ActionsConfig, DeviceConfig
from tests.fakes import Recorder

SPECS = [("porch light", "light", "outside"), ("kitchen fan", "fan", "kitchen")]


def house(tmp_path, json_replies, replies=()):
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    backends: dict[str, MemoryBackend] = {}

    def make(name, table):
        backends[name] = MemoryBackend()
        return backends[name]

    configs = [DeviceConfig(n, k, (), r, mqtt={"command_topic": n}) for n, k, r in SPECS]
    actions = Actions(configs, ActionsConfig(), bus, tmp_path, make_mqtt=make)
    llm = ScriptedLlm(replies, json_replies=json_replies)

    async def inline(fn, *args):
        return fn(*args)

    caller = LlmToolCaller(llm, actions.registry, actions.devices, inline)
    return actions, caller, backends, recorder, llm


def call(tool, **arguments):
    return json.dumps({"tool": tool, "arguments": arguments})


def test_a_checked_call_runs_and_the_template_answers(tmp_path):
    actions, caller, backends, recorder, llm = house(
        tmp_path,
        [call("device_on", device="porch light"),
         call("timer_set", seconds=5)],  # the model's 5 s for "ten minutes"
    )  # fmt: skip

    async def main():
        async with actions:
            lit = await caller.handle("I need the porch light, it's dark", 1)
            timer = await caller.handle("give me a countdown of ten minutes for the tea", 2)
            return lit, timer, actions.timers.running()

    lit, timer, running = asyncio.run(main())
    assert lit.reply == "The porch light is on." and lit.handler == "llm_tools"
    assert backends["porch light"].commands == [("on", True)]
    # The words' length and name, not the model's; no phrasing given: the template.
    assert timer.reply == "OK, tea timer for ten minutes, starting now."
    assert [(t.name, t.seconds) for t in running] == [("tea", 600)]
    assert not caller.last_phrasing.by_model and "language model failed" in (
        caller.last_phrasing.reason
    )
    assert [(a.tool, a.path) for a in recorder.of("action")] == [
        ("device_on", "llm"), ("timer_set", "llm"),
    ]  # fmt: skip
    messages, schema = llm.json_prompts[0]
    assert "porch light" in messages[0].content and messages[1].content.startswith("I need")
    offered = [o["properties"]["tool"]["const"] for o in schema["anyOf"]]
    assert offered == ["device_on", "device_off", "device_toggle", "device_brightness",
                       "device_state", "none"]  # fmt: skip
    timer_offered = [o["properties"]["tool"]["const"] for o in llm.json_prompts[1][1]["anyOf"]]
    assert timer_offered[0] == "timer_set" and "device_on" not in timer_offered


def test_calls_the_words_do_not_support_are_dropped(tmp_path):
    actions, caller, backends, recorder, llm = house(
        tmp_path,
        [
            call("device_on", device="kitchen fan"),  # the porch light was named
            call("device_off", device="porch light"),  # "on" was said
            call("device_on", device="porch light"),  # for a joke about lights
            # whisper's garbled "set the porch light brightness to eighty percent"
            call("device_on", device="porch light"),
            call("timer_set", seconds=120),  # "add two minutes to the pasta timer"
        ],
    )

    async def main():
        async with actions:
            return [
                await caller.handle("I need the porch light on", 1),
                await caller.handle("I need the porch light on", 2),
                await caller.handle("tell me a joke about lights", 3),
                await caller.handle("what is the capital of France?", 4),  # not even asked
                await caller.handle("Sent in the porch light right in a steady percent.", 5),
                await caller.handle("and two minutes to the past a timer.", 6),
            ]

    assert asyncio.run(main()) == [None] * 6
    assert not any(b.commands for b in backends.values())
    assert recorder.of("action") == [] and len(llm.json_prompts) == 5


def test_unknown_tools_bad_arguments_and_garbage_say_it_could_not(tmp_path):
    actions, caller, backends, recorder, _ = house(
        tmp_path,
        [
            call("open_garage"),
            call("device_on", device="garage door"),
            call("device_on", device="porch light", colour="red"),
            "{not json",
            json.dumps({"tool": 7}),
        ],
    )

    async def main():
        async with actions:
            return [await caller.handle("turn the porch light on", n) for n in range(5)]

    handled = asyncio.run(main())
    assert handled[1] is None  # a device that was not said: dropped before validation
    replies = [h.reply for h in handled[0:3:2]]
    assert replies[0] == "Sorry, I couldn't do that. I have no tool called open_garage."
    assert replies[1] == "Sorry, I couldn't do that. The device_on tool takes no colour."
    assert handled[3:] == [None, None]  # cut-off JSON: no call was made, answered in words
    assert not any(b.commands for b in backends.values())
    assert [a.ok for a in recorder.of("action")] == [False, False]


def test_no_grammar_turns_tool_calls_off_and_errors_fall_back_to_words(tmp_path):
    actions, caller, _, _, _ = house(
        tmp_path, [LanguageModelError("out of memory"), GrammarUnsupportedError("rkllm")]
    )

    async def main():
        async with actions:
            first = await caller.handle("turn the porch light on", 1)
            second = await caller.handle("turn the porch light on", 2)
            third = await caller.handle("turn the porch light on", 3)
            return first, second, third

    assert asyncio.run(main()) == (None, None, None)
    assert not caller.enabled


def test_the_schema_names_every_offered_tool_and_none(tmp_path):
    actions, caller, *_ = house(tmp_path, [])
    names = [o["properties"]["tool"]["const"] for o in caller.schema["anyOf"]]
    assert names[-1] == "none" and "device_on" in names and "time_now" not in names
    device = caller.schema["anyOf"][0]["properties"]["arguments"]["properties"]["device"]
    assert device["enum"] == ["porch light", "kitchen fan"]
    assert call_schema([])["anyOf"] == [caller.schema["anyOf"][-1]]
    asyncio.run(actions.close())


# ---- the model phrases the answer; the facts are checked ----------------------------------


def test_the_model_phrases_the_answer_when_it_keeps_the_facts(tmp_path):
    actions, caller, backends, recorder, llm = house(
        tmp_path,
        [call("device_on", device="porch light"), call("timer_set", seconds=5)],
        ["Done, the porch light is now on.", "Your pasta countdown of 10 minutes is running."],
    )

    async def main():
        async with actions:
            lit = await caller.handle("I need the porch light, it's dark", 1)
            timer = await caller.handle("could you give me a pasta countdown of ten minutes", 2)
            return lit, timer, actions.timers.running()

    lit, timer, running = asyncio.run(main())
    assert lit.reply == "Done, the porch light is now on."
    assert timer.reply == "Your pasta countdown of 10 minutes is running."
    assert caller.last_phrasing.by_model and caller.last_phrasing.reason == ""
    assert [(t.name, t.seconds) for t in running] == [("pasta", 600)]
    # The result is fed back: the last message holds the request and the tool's sentence.
    last = llm.prompts[1][-1]
    assert last.role == "user" and "pasta countdown" in last.content
    assert "Result: OK, pasta timer for ten minutes, starting now." in last.content
    # The audit log and the action event keep the tool's own sentence.
    assert [a.result for a in recorder.of("action")] == [
        "The porch light is on.", "OK, pasta timer for ten minutes, starting now.",
    ]  # fmt: skip


def test_a_phrasing_that_changes_the_facts_falls_back_to_the_template(tmp_path):
    actions, caller, backends, _, llm = house(
        tmp_path,
        [call("device_on", device="porch light"), call("device_on", device="porch light"),
         call("device_on", device="porch light"), call("open_garage")],
        ["The porch light is now off.", "I'm sorry, I can't turn on lights.",
         " ".join(["light"] * (MAX_TOKENS + 20))],
    )  # fmt: skip

    async def main():
        async with actions:
            return [await caller.handle("I need the porch light on", n) for n in range(4)]

    handled = asyncio.run(main())
    assert [h.reply for h in handled[:3]] == ["The porch light is on."] * 3
    assert len(llm.prompts) == 3  # a failed call is not phrased: its template says why
    assert handled[3].reply.startswith("Sorry, I couldn't do that.")
    assert len(caller.last_phrasing.model_text.split()) == MAX_TOKENS  # cut at the cap


DEVICES = ["porch light", "kitchen fan"]
HOUR_AND_HALF = "OK, one hour and thirty minutes, starting now."
TWO_TIMERS = (
    "You have two timers: the pasta timer with nine minutes left and the eggs timer with four "
    "minutes left."
)


@pytest.mark.parametrize(
    ("tool", "arguments", "result", "sentence", "problem"),
    [
        ("device_on", {"device": "porch light"}, "The porch light is on.",
         "Done, the porch light is now on.", ""),
        ("device_on", {"device": "porch light"}, "The porch light is on.",
         "The light is on.", "leaves out 'porch light'"),
        ("device_on", {"device": "porch light"}, "The porch light is on.",
         "The porch light is off.", "leaves out 'on'"),
        ("device_on", {"device": "porch light"}, "The porch light is on.",
         "I turned on the porch light and the kitchen fan.", "'kitchen fan'"),
        ("device_on", {"device": "porch light"}, "The porch light is on.",
         "The porch light is on. Good night.", "more than one sentence"),
        ("device_on", {"device": "porch light"}, "The porch light is on.",
         "Is the porch light on?", "finished sentence"),
        ("device_off", {"device": "kitchen fan"}, "The kitchen fan is off.",
         "I could not turn the kitchen fan off.", "'not'"),
        ("device_off", {"device": "kitchen fan"}, "The kitchen fan is off.",
         'The kitchen fan is off {"tool": "none"}.', "not plain speech"),
        ("device_brightness", {"device": "porch light", "percent": 30},
         "The porch light is at 30 percent.", "I set the porch light to 30%.", ""),
        ("device_brightness", {"device": "porch light", "percent": 30},
         "The porch light is at 30 percent.", "I made the porch light darker by 30 percent.",
         "at 30 percent"),
        ("device_brightness", {"device": "porch light", "percent": 30},
         "The porch light is at 30 percent.", "The porch light is at 40 percent.", "40"),
        ("timer_set", {"seconds": 600, "name": "pasta"},
         "OK, pasta timer for ten minutes, starting now.",
         "Your ten minute pasta timer is running.", ""),
        ("timer_set", {"seconds": 600, "name": "pasta"},
         "OK, pasta timer for ten minutes, starting now.",
         "Your pasta timer is running for 10 minutes and 30 seconds.", "length"),
        ("timer_set", {"seconds": 600, "name": "pasta"},
         "OK, pasta timer for ten minutes, starting now.",
         "Your ten minute timer is running.", "leaves out 'pasta'"),
        ("timer_set", {"seconds": 5400, "name": ""}, HOUR_AND_HALF,
         "I set a timer for 1 hour and 30 minutes.", ""),
        ("timer_set", {"seconds": 5400, "name": ""}, HOUR_AND_HALF,
         "I set a timer for one hour.", "length"),
        ("timer_cancel", {"name": ""}, "Cancelled the ten minute timer.",
         "I cancelled the ten minute countdown.", ""),
        ("timer_cancel", {"name": ""}, "Cancelled the ten minute timer.",
         "The ten minute timer is running.", "none of"),
        ("timer_remaining", {"name": ""}, "Nine minutes and fifty seconds left on the pasta timer.",
         "The pasta timer has 9 minutes and 50 seconds left.", ""),
        ("timer_remaining", {"name": ""}, "Nine minutes and fifty seconds left on the pasta timer.",
         "I set the pasta timer to 9 minutes and 50 seconds.", "'set'"),
        ("timer_list", {}, TWO_TIMERS, "You have two eggs timer with four minutes left.",
         "leaves out 'pasta'"),
        ("timer_list", {}, TWO_TIMERS, "You have two timers, pasta with nine minutes and eggs "
         "with four minutes left.", ""),
    ],
)  # fmt: skip
def test_the_facts_check(tool, arguments, result, sentence, problem):
    reason = check(sentence, facts_of(tool, arguments, result, DEVICES))
    assert (reason == "") if not problem else (problem in reason), reason


@pytest.mark.parametrize(
    ("said", "name"),
    [
        ("Could you give me a pasta countdown of ten minutes?", "pasta"),
        ("Set a pasta timer for 10 minutes.", "pasta"),
        ("Set a 10 minute egg timer.", "egg"),
        ("I want a timer for ninety seconds called boiled eggs", "boiled eggs"),
        ("An hour and a half countdown for the roast.", "roast"),
        ("Give me a countdown of ten minutes for the tea.", "tea"),
        ("Set a timer for ten minutes.", ""),
        ("I need a reminder in twenty minutes.", ""),
        ("Set up a timer for five minutes for me.", ""),
    ],
)
def test_a_timer_keeps_the_name_that_was_said(said, name):
    assert set_timer_name(normalise(said)) == name
