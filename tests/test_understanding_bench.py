"""`appliance bench --only understanding` (appliance/bench/understanding.py): its judging
rules on made-up turns, and a reduced run end to end with the real engines."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from appliance import events as ev
from appliance.bench import judging, large_house, recordings, understanding
from appliance.bench.testset import (
    FOLLOW_UPS,
    HOUSE,
    NONE,
    VOICES,
    Call,
    Item,
    reduced,
    spoken_items,
)
from appliance.bench.turns import without_memory
from appliance.cli import build_parser
from appliance.config import LlmConfig, SttConfig
from appliance.engines import load_engines, pipeline_settings
from tests.fakes import repeatable_config


def action(tool: str, ok: bool = True, **arguments) -> ev.Action:
    return ev.Action(
        turn=1, stream_time=0.0, tool=tool, arguments=arguments, ok=ok, result="", path="intents"
    )


def turn_of(*events: ev.Event) -> judging.Turn:
    turn = judging.Turn()
    for event in events:
        turn(event)
    return turn


def test_the_test_set_covers_every_kind_with_voices_and_noise():
    items = spoken_items()
    assert len(items) >= 60
    kinds = {k: sum(i.kind == k for i in items) for k in ("command", "free", "near_miss")}
    assert kinds["free"] == 10 and kinds["near_miss"] == 10 and kinds["command"] >= 40
    assert {i.voice for i in items} == set(VOICES)
    assert abs(sum(bool(i.noise) for i in items) - len(items) / 3) <= 1
    names = {d.name for d in HOUSE}
    for item in items:
        for call in (*item.expect, *item.setup):
            assert call.arguments.get("device", "porch light") in names, item
    assert len(reduced(6)) == 6 and {i.kind for i in reduced(6)} >= {"command", "free"}


def test_words_are_compared_with_numbers_spelled_out():
    assert judging.words_of("Set it to 80%. 105 and 3") == [
        "set", "it", "to", "eighty", "percent", "one", "hundred", "five", "and", "three",
    ]  # fmt: skip
    spoken = "What's one hundred and five divided by five?"
    assert judging.word_errors(spoken, "What's 105 / 5")[0] == 2  # "divided by" said as "/"
    assert judging.word_errors("Turn on the porch light.", "turn on the Porsche light") == (1, 5)
    assert judging.doubled("What's 17 x 23? What's seventeen times twenty three.") is False
    assert judging.doubled("What time is it? What time is it?")
    assert not judging.doubled("Turn on the porch light.") and not judging.doubled("")


def test_a_turn_is_right_wrong_a_confirmation_or_missed():
    half = Call("device_brightness", {"device": "bed light", "percent": 50})
    item = Item("Set the bed light to fifty percent.", (half,), "command")
    said = action("device_brightness", device="Bed Light", percent=50.0)
    assert judging.verdict(item, turn_of(said)) == "right"
    other = action("device_brightness", device="bed light", percent=15)
    assert judging.verdict(item, turn_of(other)) == "wrong"
    assert judging.verdict(item, turn_of(action("device_brightness", False))) == "missed"
    asked = ev.IntentRecognized(turn=1, stream_time=0.0, intent="HassLightSet", slots={}, score=0.7,
                                path="confirm", text="")  # fmt: skip
    assert judging.verdict(item, turn_of(asked)) == "confirm"
    nothing = Item("Never mind.", NONE, "refusal", allowed=("stop",))
    assert judging.verdict(nothing, turn_of(action("stop"))) == "right"
    assert judging.verdict(nothing, turn_of(action("device_on", device="bed light"))) == "wrong"
    every = Item("Cancel all timers.", (Call("timer_cancel|timer_list", {"all": True}),),
                 "command")  # fmt: skip
    assert judging.verdict(every, turn_of(action("timer_cancel", all=True))) == "right"
    assert judging.verdict(every, turn_of(action("timer_cancel"))) == "wrong"


def test_claims_and_refusals_are_read_from_the_reply():
    class Claims:
        @staticmethod
        def find_claim(sentence):
            return "claim" if sentence.startswith("I set") else None

    idle = judging.Turn()
    assert judging.false_claim(["Sure.", "I set a timer."], idle, Claims) == "I set a timer."
    assert judging.false_claim(["I set a timer."], turn_of(action("timer_set")), Claims) == ""
    assert judging.false_claim(["I set a timer."], idle, None) == ""
    assert judging.refused("I can't change the colour of the bed light.", idle)
    assert not judging.refused("Paris is the capital of France.", idle)
    assert judging.refused("I didn't set a timer: I didn't catch a command I can do.", idle)
    assert not judging.refused("I can't.", turn_of(action("device_on")))


def test_pink_noise_has_unit_level_and_falls_with_frequency():
    noise = recordings.pink_noise(16_000 * 4, seed=1)
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0, rel=1e-6)
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / 16_000)
    low = power[(freqs > 100) & (freqs < 200)].mean()
    high = power[(freqs > 3200) & (freqs < 6400)].mean()
    assert 10 < low / high < 60  # 1/f: 32× the frequency, about 32× less power per bin
    speech = np.full(8000, 1000, np.int16)
    mixed = recordings.with_noise(speech, noise, 10.0, speech)
    assert np.std(mixed.astype(float) - speech) == pytest.approx(1000 / 10**0.5, rel=0.05)


def test_the_cli_offers_understanding():
    args = build_parser().parse_args(["bench", "--only", "understanding"])
    assert args.only == "understanding"


@pytest.mark.e2e
def test_a_reduced_understanding_run_reports_every_figure_and_its_counts_add_up():
    # One thread each, as the bench runs them: a shared machine's load stalls more.
    config = repeatable_config(stt=SttConfig(threads=1), llm=LlmConfig(threads=1))
    engines = load_engines(config)
    settings = without_memory(pipeline_settings(config))
    follow_ups = (FOLLOW_UPS[0], FOLLOW_UPS[-1])  # background talk, a real "yes, please"
    with_setup = next(i for i in spoken_items() if i.text == "Cancel all timers.")
    items = (*reduced(5), with_setup)  # one needs two timers running first
    figures = asyncio.run(
        understanding.understanding_figures(
            engines, settings, config, items=items, follow_ups=follow_ups,
            large_house=False,
        )
    )  # fmt: skip
    keys = {"items", "right", "wrong", "wrong_changed_something", "confirm", "missed",
            "false_claims", "honest_refusals", "refusals_wanted", "wer_unbiased", "wer_biased",
            "doubled_unbiased", "doubled_biased", "handler_ms", "follow_up", "bias_prompt",
            "stt_median_ms", "rows", "by_kind"}  # fmt: skip
    assert keys <= set(figures), keys - set(figures)
    assert figures["wrong_changed_something"] <= figures["wrong"]
    assert figures["items"] == len(figures["rows"]) == 6
    verdicts = ("right", "wrong", "confirm", "missed")
    assert sum(figures[v] for v in verdicts) == 6
    assert sum(k["items"] for k in figures["by_kind"].values()) == 6
    assert isinstance(figures["false_claims"], int)  # claims.py is there
    assert 0 <= figures["wer_biased"] <= 2 and 0 <= figures["wer_unbiased"] <= 2
    assert "porch light" in figures["bias_prompt"]
    for row in figures["rows"]:
        assert row["verdict"] in verdicts and row["heard_biased"] and row["reply"], row
    cancelled = figures["rows"][-1]
    assert len(cancelled["setup"]) == 2 and cancelled["text"] == "Cancel all timers."
    assert all(a["path"] != "bench" for a in cancelled["actions"])  # the setup is not judged
    follow = figures["follow_up"]
    assert (follow["background"], follow["answers"]) == (1, 1)
    assert 0 <= follow["false_captures"] <= 1 and 0 <= follow["kept"] <= 1
    table = dict((name, value) for name, value, _ in understanding.table_rows(figures))
    wrong = f"{figures['wrong']} ({figures['wrong_changed_something']})"
    assert table["Wrong action (of them, changed something)"] == wrong


@pytest.mark.e2e
def test_the_handler_alone_is_timed_on_a_large_house():
    requests = ("Turn on lamp 7.", "Tell me a joke.")
    timed = asyncio.run(large_house.handler_alone(large_house.LARGE_HOUSE[:50], requests))
    assert timed["devices"] == 50 and set(timed["per_request_ms"]) == set(requests)
    assert 0 < timed["median_ms"] <= timed["max_ms"]
