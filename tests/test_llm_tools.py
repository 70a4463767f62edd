"""Tool calls by the language model: grammar-shaped JSON, checked against the words."""

from __future__ import annotations

import asyncio
import json

from appliance import events as ev
from appliance.actions.app import Actions
from appliance.actions.config import ActionsConfig, DeviceConfig
from appliance.actions.devices import MemoryBackend
from appliance.actions.llm_tools import LlmToolCaller, call_schema
from appliance.errors import GrammarUnsupportedError, LanguageModelError
from appliance.llm.fake import ScriptedLlm
from tests.fakes import Recorder

SPECS = [("porch light", "light", "outside"), ("kitchen fan", "fan", "kitchen")]


def house(tmp_path, json_replies):
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    backends: dict[str, MemoryBackend] = {}

    def make(name, table):
        backends[name] = MemoryBackend()
        return backends[name]

    configs = [DeviceConfig(n, k, (), r, mqtt={"command_topic": n}) for n, k, r in SPECS]
    actions = Actions(configs, ActionsConfig(), bus, tmp_path, make_mqtt=make)
    llm = ScriptedLlm([], json_replies=json_replies)

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
    assert timer.reply == "OK, ten minutes, starting now."  # the words' length, not the model's
    assert [(t.name, t.seconds) for t in running] == [("", 600)]
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
        ],
    )

    async def main():
        async with actions:
            return [
                await caller.handle("I need the porch light on", 1),
                await caller.handle("I need the porch light on", 2),
                await caller.handle("tell me a joke about lights", 3),
                await caller.handle("what is the capital of France?", 4),  # not even asked
            ]

    assert asyncio.run(main()) == [None] * 4
    assert not any(b.commands for b in backends.values())
    assert recorder.of("action") == [] and len(llm.json_prompts) == 3


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
