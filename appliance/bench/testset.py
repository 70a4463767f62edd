"""The spoken command test set of `appliance bench --only understanding`: a house of six
devices, the sentences people say to it with what each must do (or that nothing may be
done), the voice and the noise each is spoken with, and the follow-up window's phrases.

Nothing here is audio: the bench speaks each sentence at run time (Piper and espeak-ng
voices; a third of them over pink or babble noise), so no recording is committed or
downloaded.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from appliance.sections.devices import DeviceConfig, GpioOutput

HOUSE: tuple[DeviceConfig, ...] = (
    DeviceConfig("porch light", "light", ("front light",), "outside", GpioOutput(17, pwm=True)),
    DeviceConfig("kitchen light", "light", (), "kitchen", GpioOutput(27)),
    DeviceConfig("bed light", "light", (), "bedroom", GpioOutput(22, pwm=True)),
    DeviceConfig("standing light", "light", (), "living room", GpioOutput(23, pwm=True)),
    DeviceConfig("ceiling fan", "fan", (), "bedroom", GpioOutput(24)),
    DeviceConfig("coffee maker plug", "plug", (), "kitchen", GpioOutput(25)),
)  # fmt: skip
"""The house the test set talks to (MockFactory pins in the bench)."""
LIGHTS = ("porch light", "kitchen light", "bed light", "standing light")


@dataclass(frozen=True)
class Voice:
    """How a sentence is spoken: the appliance's own Piper voice, or an espeak-ng voice."""

    engine: str
    """piper or espeak."""
    name: str = ""
    """The espeak-ng voice (en-us, en-gb, en-gb-scotland, en-us+f3, …)."""
    speed: int = 150
    """espeak-ng words per minute."""
    pitch: int = 50
    """espeak-ng pitch, 0–99."""


VOICES: dict[str, Voice] = {
    "piper": Voice("piper"),
    "us": Voice("espeak", "en-us", 150, 50),
    "gb": Voice("espeak", "en-gb", 140, 45),
    "scottish": Voice("espeak", "en-gb-scotland", 145, 50),
    "us-female": Voice("espeak", "en-us+f3", 155, 65),
    "gb-fast": Voice("espeak", "en-gb+m3", 175, 40),
}
NOISES: dict[str, float] = {"": 0.0, "pink": 12.0, "babble": 15.0}
"""Noise kind → signal-to-noise ratio in dB ("" = a quiet room)."""


@dataclass(frozen=True)
class Call:
    """A tool call that must run and succeed, with the arguments that matter (others may
    differ); `tool` may name alternatives separated by "|"."""

    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)

    @property
    def tools(self) -> tuple[str, ...]:
        return tuple(self.tool.split("|"))


@dataclass(frozen=True)
class Item:
    text: str
    """The sentence spoken."""
    expect: tuple[Call, ...]
    """Every call that must run and succeed; () = NONE: no action may run, none claimed."""
    kind: str
    """command, refusal (no action, an honest answer), free (a question for the language
    model) or near_miss (sounds like a command, must not act)."""
    setup: tuple[Call, ...] = ()
    """Calls made through the tool registry before the sentence (a timer to cancel)."""
    allowed: tuple[str, ...] = ()
    """Harmless tools that may also run (e.g. stop for "never mind")."""
    voice: str = "piper"
    noise: str = ""

    @property
    def snr_db(self) -> float:
        return NOISES[self.noise]


def on(device: str) -> tuple[Call, ...]:
    return (Call("device_on", {"device": device}),)


def off(device: str) -> tuple[Call, ...]:
    return (Call("device_off", {"device": device}),)


def timer(seconds: float, name: str | None = None) -> tuple[Call, ...]:
    arguments: dict[str, Any] = {"seconds": seconds}
    if name is not None:
        arguments["name"] = name
    return (Call("timer_set", arguments),)


def call(tool: str, **arguments: Any) -> tuple[Call, ...]:
    return (Call(tool, arguments),)


NONE: tuple[Call, ...] = ()
TEN_MINUTES = (Call("timer_set", {"seconds": 600}),)
PASTA = (Call("timer_set", {"seconds": 480, "name": "pasta"}),)
PAUSED = (*TEN_MINUTES, Call("timer_pause", {}))

_COMMANDS: tuple[tuple[str, tuple[Call, ...], tuple[Call, ...]], ...] = (
    # on / off, by name, alias, room and kind
    ("Turn on the porch light.", on("porch light"), ()),
    ("Switch off the kitchen light.", off("kitchen light"), ()),
    ("Turn the ceiling fan on.", on("ceiling fan"), ()),
    ("Turn off the fan.", off("ceiling fan"), ()),
    ("Turn on the coffee maker.", on("coffee maker plug"), ()),
    ("Turn on the front light.", on("porch light"), ()),
    ("Turn off all the lights.", tuple(Call("device_off", {"device": d}) for d in LIGHTS), ()),
    ("Turn on the lights in the bedroom.", on("bed light"), ()),
    ("Turn off the living room light.", off("standing light"), ()),
    ("Toggle the kitchen light.", call("device_toggle", device="kitchen light"), ()),
    ("Turn on the kitchen lights.", on("kitchen light"), ()),
    # brightness
    ("Set the bed light to fifty percent.",
     call("device_brightness", device="bed light", percent=50), ()),
    ("Dim the standing light to twenty percent.",
     call("device_brightness", device="standing light", percent=20), ()),
    ("Set the porch light brightness to eighty percent.",
     call("device_brightness", device="porch light", percent=80), ()),
    ("Turn the bed light down to ten percent.",
     call("device_brightness", device="bed light", percent=10), ()),
    ("Set the living room light to one hundred percent.",
     call("device_brightness", device="standing light", percent=100), ()),
    # state
    ("Is the porch light on?", call("device_state", device="porch light"), ()),
    ("Is the ceiling fan off?", call("device_state", device="ceiling fan"), ()),
    ("Is the coffee maker plug on?", call("device_state", device="coffee maker plug"), ()),
    # timers
    ("Set a timer for ten minutes.", timer(600), ()),
    ("Set a pasta timer for eight minutes.", timer(480, "pasta"), ()),
    ("Set a timer for three hours and ten minutes.", timer(11400), ()),
    ("Start a five minute timer.", timer(300), ()),
    ("Set a timer for thirty seconds.", timer(30), ()),
    ("Set a timer for an hour and a half.", timer(5400), ()),
    ("Set an egg timer for four minutes.", timer(240, "egg"), ()),
    ("Cancel the timer.", call("timer_cancel"), TEN_MINUTES),
    ("Cancel the pasta timer.", call("timer_cancel", name="pasta"), (*PASTA, *TEN_MINUTES)),
    ("Cancel all timers.", call("timer_cancel", all=True), (*PASTA, *TEN_MINUTES)),
    ("Pause the timer.", call("timer_pause"), TEN_MINUTES),
    ("Resume the timer.", call("timer_resume"), PAUSED),
    ("How much time is left on the timer?", call("timer_remaining|timer_list"), TEN_MINUTES),
    ("How long is left on the pasta timer?", call("timer_remaining", name="pasta"), PASTA),
    ("What timers do I have?", call("timer_list|timer_remaining"), PASTA),
    ("Add five minutes to the timer.", call("timer_adjust", seconds=300), TEN_MINUTES),
    ("Add two minutes to the pasta timer.", call("timer_adjust", seconds=120, name="pasta"),
     PASTA),
    # time and date
    ("What time is it?", call("time_now"), ()),
    ("What's the time?", call("time_now"), ()),
    ("What is the date today?", call("date_today"), ()),
    ("What day is it today?", call("date_today"), ()),
    # shopping list
    ("Add milk to the shopping list.", call("list_add", item="milk"), ()),
    ("Put eggs on my shopping list.", call("list_add", item="eggs"), ()),
    ("What's on my shopping list?", call("list_read"), ()),
    ("Read me the shopping list.", call("list_read"), ()),
    # arithmetic
    ("What is seventeen times twenty three?",
     call("calculate", a=17, operator="times", b=23), ()),
    ("What's one hundred and five divided by five?",
     call("calculate", a=105, operator="divided by", b=5), ()),
    ("What is twelve plus thirty?", call("calculate", a=12, operator="plus", b=30), ()),
)  # fmt: skip
"""(sentence, the calls it must make, the calls made before it)."""

_REFUSALS = (
    "Turn the bed light red.",  # no colour on a PWM pin
    "Make the kitchen light blue.",
    "What's the weather like today?",  # no weather source
    "Will it rain tomorrow?",
    "Never mind.",
    "Oh, never mind.",
)
"""Nothing may be done (nothing claimed either); an honest answer is wanted."""

FREE = (
    "What is the capital of France?",
    "Tell me a joke.",
    "Who wrote Hamlet?",
    "How far away is the moon?",
    "Why is the sky blue?",
    "How do I boil an egg?",
    "Tell me about the history of the light bulb.",
    "What is the tallest mountain in the world?",
    "Who painted the Mona Lisa?",
    "Can you recommend a good book?",
)
"""Questions for the language model: not one may be taken for a command."""

NEAR_MISSES = (
    "Turn on the porch light tomorrow.",
    "Turn on the garage light.",  # no such device
    "Set a timer for the roast.",  # no length
    "I turned off the light yesterday.",
    "The kitchen light is broken.",
    "My neighbour's porch light is always on.",
    "I need to buy a new ceiling fan.",
    "The timer went off an hour ago.",
    "Don't turn on the bed light.",
    "Set the alarm for seven.",  # no alarm clock
)
"""Sound like commands; nothing may be done."""


def _variants() -> itertools.cycle[tuple[str, str]]:
    """Voices in turn; every third sentence over noise, pink and babble in turn."""
    voices = list(VOICES)
    noises = itertools.cycle(("pink", "babble"))
    out = []
    for index in range(len(voices) * 3):
        out.append((voices[index % len(voices)], next(noises) if index % 3 == 2 else ""))
    return itertools.cycle(out)


def spoken_items() -> tuple[Item, ...]:
    """Every item, with its voice and noise."""
    variants = _variants()
    items: list[Item] = []
    for text, expect, setup in _COMMANDS:
        items.append(Item(text, expect, "command", setup, _allowed(text), *next(variants)))
    for text in _REFUSALS:
        items.append(Item(text, NONE, "refusal", (), _allowed(text), *next(variants)))
    for text in FREE:
        items.append(Item(text, NONE, "free", (), (), *next(variants)))
    for text in NEAR_MISSES:
        items.append(Item(text, NONE, "near_miss", (), (), *next(variants)))
    return tuple(items)


def _allowed(text: str) -> tuple[str, ...]:
    return ("stop",) if "never mind" in text.lower() else ()


def reduced(count: int = 6) -> tuple[Item, ...]:
    """A few items of each kind, for the quick end-to-end test."""
    items = spoken_items()
    kinds = ("command", "refusal", "free", "near_miss")
    picked: list[Item] = []
    for item in itertools.chain.from_iterable(
        itertools.zip_longest(*([i for i in items if i.kind == k] for k in kinds))
    ):
        if item is not None and len(picked) < count:
            picked.append(item)
    return tuple(picked)


@dataclass(frozen=True)
class FollowUpPhrase:
    text: str
    """Spoken in the follow-up window."""
    asked: str
    """The appliance's reply just before (what a follow-up would answer)."""
    answer: bool
    """True: a real answer that must be kept; False: the room talking, must be left."""
    voice: str = "piper"
    noise: str = ""


_ASKED = (
    "Which light: the porch light or the kitchen light?",
    "Did you mean the porch light?",
    "The capital of France is Paris.",
    "Your timer is done.",
)
FOLLOW_UPS: tuple[FollowUpPhrase, ...] = (
    FollowUpPhrase("Haha, this is the first place.", _ASKED[2], False, "us"),
    FollowUpPhrase("Yeah, she told me yesterday.", _ASKED[0], False, "gb"),
    FollowUpPhrase("No way, that's what he said.", _ASKED[1], False, "piper"),
    FollowUpPhrase("I know, right? It was so funny.", _ASKED[2], False, "us-female"),
    FollowUpPhrase("They were at the cinema all evening.", _ASKED[0], False, "scottish"),
    FollowUpPhrase("You should have seen his face.", _ASKED[3], False, "piper", "babble"),
    FollowUpPhrase("Yes.", _ASKED[1], True, "piper"),
    FollowUpPhrase("No thanks.", _ASKED[1], True, "us"),
    FollowUpPhrase("The porch light.", _ASKED[0], True, "gb"),
    FollowUpPhrase("The kitchen one.", _ASKED[0], True, "us-female", "pink"),
    # Not "And of Germany?" after "The capital of France is Paris.": a reply that asks
    # nothing opens no window by default (follow_up = "asked"), and with "always" nothing
    # is filtered, so that row measured a case the pipeline never has.
    FollowUpPhrase("No, the kitchen light.", _ASKED[1], True, "piper"),
    FollowUpPhrase("Yes, please.", _ASKED[1], True, "scottish"),
)  # fmt: skip
"""Background talk (must not be taken as an answer) and real answers (must be kept)."""
