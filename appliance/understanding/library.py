"""Home Assistant's sentence library (`home-assistant-intents`) for one language, with the
few sentences of our own that it lacks, compiled for `hassil`.

The library's wheel carries one JSON file per language. A file that is missing or cannot
be read stops the start with the package's name and the command that restores it: the
appliance would otherwise understand no command at all.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from appliance.errors import ModelError

PACKAGE = "home-assistant-intents"
RESTORE = f"reinstall it: .venv/bin/pip install --force-reinstall {PACKAGE} (or run ./setup.sh)"

# Our own sentences, in the library's format: what an appliance without Home Assistant
# needs and the library does not say. English only; other languages get the library's.
_OURS: dict[str, dict[str, Any]] = {
    "en": {
        # Said around a request, ignored anywhere in it (as the library's own "please").
        # Not "so", "well" or "now": they are words of device names ("well pump").
        "skip_words": [
            "okay so",
            "alright so",
            "so um",
            "so uh",
            "right now",
            "hey",
            "um",
            "uh",
            "uhm",
            "erm",
            "hmm",
            "okay",
            "ok",
            "oh",
            "alright",
            "thanks",
            "thank you",
            "i need you to",
            "i need to",
            "i need",
            "i want to",
            "i want you to",
            "can i get",
            "can i have",
            "could i get",
            "could i have",
            "i would like to",
            "i would like",
            "i wanna",
        ],
        "intents": {
            "HassToggle": {
                "data": [
                    {
                        "sentences": [
                            "(toggle|flip) <the> {name}",
                            "{name} toggle",
                            "(toggle|flip) [the] {device_kind:kind}",
                        ]
                    }
                ]
            },
            "HassLightSet": {
                "data": [
                    {
                        "sentences": [
                            "(set|<turn>|dim) [the] ({name}|{device_kind:kind}) to half "
                            "[brightness]",
                            "[set] [the] ({name}|{device_kind:kind}) to half brightness",
                        ],
                        "slots": {"brightness": 50},
                    },
                    {
                        "sentences": [
                            "(set|<turn>|brighten) [the] ({name}|{device_kind:kind}) to (full|"
                            "max|maximum) [brightness]",
                            "[set] [the] ({name}|{device_kind:kind}) [to] full brightness",
                        ],
                        "slots": {"brightness": 100},
                    },
                    {
                        "sentences": [
                            "(dim|brighten|<turn> (down|up)) [the] {name} to "
                            "{brightness}[ ][(%|percent)]",
                            "(set|<turn>) [the] {name} [brightness] at {brightness}[ ](%|percent)",
                            "(dim|brighten|<turn> (down|up)) [the] {device_kind:kind} to "
                            "{brightness}[ ](%|percent)",
                            "<turn> [the] ({name}|{device_kind:kind}) (down|up) to "
                            "{brightness}[ ](%|percent)",
                        ]
                    },
                    {
                        # No level said: a fixed one (the appliance does not read a
                        # light's level back), spoken in the reply.
                        "sentences": [
                            "dim [the] ({name}|{device_kind:kind}) [<a_bit>]",
                            "(make|turn) [the] ({name}|{device_kind:kind}) [<a_bit>] "
                            "(dimmer|darker)",
                            "<turn> [the] ({name}|{device_kind:kind}) down",
                            "<turn> down [the] ({name}|{device_kind:kind})",
                        ],
                        "metadata": {"level": 30},
                    },
                    {
                        "sentences": [
                            "brighten [the] ({name}|{device_kind:kind}) [<a_bit>]",
                            "(make|turn) [the] ({name}|{device_kind:kind}) [<a_bit>] brighter",
                            "<turn> [the] ({name}|{device_kind:kind}) up",
                            "<turn> up [the] ({name}|{device_kind:kind})",
                        ],
                        "metadata": {"level": 100},
                    },
                    {
                        "sentences": [
                            "[(set|dim|brighten|<turn> (down|up)|<turn>)] [all] [the] lights to "
                            "{brightness}[ ](%|percent)",
                        ],
                        "slots": {"domain": "light"},
                    },
                    {
                        "sentences": ["[set] [all] [the] lights to half [brightness]"],
                        "slots": {"domain": "light", "brightness": 50},
                    },
                    {
                        "sentences": [
                            "(dim|<turn> down) [all] [the] lights",
                            "(make|<turn>) [all] [the] lights (down|dimmer|darker)",
                        ],
                        "slots": {"domain": "light"},
                        "metadata": {"level": 30},
                    },
                    {
                        "sentences": [
                            "(brighten|<turn> up) [all] [the] lights",
                            "(make|<turn>) [all] [the] lights (up|brighter)",
                        ],
                        "slots": {"domain": "light"},
                        "metadata": {"level": 100},
                    },
                ]
            },
            "HassSetVolumeRelative": {
                "data": [
                    {
                        "sentences": [
                            "<turn> [the] (volume|music|sound) (up|down)",
                            "<turn> (up|down) [the] (volume|music|sound)",
                        ]
                    }
                ]
            },
            "HassStartTimer": {
                "data": [
                    {
                        "sentences": [
                            "<timer_set> [a|an] {timer_name:name} timer for <timer_length>",
                            "[<timer_set>] [a|an] <timer_length> {timer_name:name} timer",
                            "<timer_set> [a|an] timer for <timer_length> for [the] "
                            "{timer_name:name}",
                            "[<timer_set>] [a|an] <timer_length> timer for [the] {timer_name:name}",
                            "<timer_set> [a|an] timer for [the] {timer_name:name} for "
                            "<timer_length>",
                            "[<timer_set>] [a|an] timer [for] <timer_length>",
                            "<timer_set> [the|my] timer (to|for) <timer_length>",
                            "timer <timer_length>",
                            # About a length: "for like ten minutes", "for about five".
                            "[<timer_set>] [a|an] timer (for|in) (like|about|around|roughly) "
                            "<timer_length>",
                            "put [on] [a|an] timer [on] for <timer_length>",
                            # An alarm in a while is a timer (an alarm at a time of day
                            # is not: nothing here does things later).
                            "[<timer_set>] [an] alarm (for|in) <timer_length>",
                            "[<timer_set>] [an] <timer_length> alarm",
                            "wake me [up] in <timer_length>",
                        ]
                    },
                    {
                        "sentences": [
                            "[<timer_set>] [a] timer for an hour",
                            "<timer_set> an hour timer",
                            "[<timer_set>] [an] alarm (for|in) an hour",
                            "wake me [up] in an hour",
                        ],
                        "slots": {"hours": 1},
                    },
                    {
                        "sentences": [
                            "[<timer_set>] [an] alarm (for|in) half an hour",
                            "wake me [up] in half an hour",
                        ],
                        "slots": {"minutes": 30},
                    },
                    {
                        "sentences": [
                            "[<timer_set>] [a] timer for a minute",
                            "<timer_set> a minute timer",
                        ],
                        "slots": {"minutes": 1},
                    },
                    {
                        "sentences": ["[<timer_set>] [a] timer for an hour and a half"],
                        "slots": {"hours": 1, "minutes": 30},
                    },
                    {
                        "sentences": ["[<timer_set>] [a] timer for a minute and a half"],
                        "slots": {"minutes": 1, "seconds": 30},
                    },
                    {
                        "sentences": [
                            "[<timer_set>] [a] timer for (a|one) minute and "
                            "{timer_seconds:seconds} second[s]"
                        ],
                        "slots": {"minutes": 1},
                    },
                    {
                        "sentences": [
                            "[<timer_set>] [a] timer for an hour and {timer_minutes:minutes} "
                            "minute[s]"
                        ],
                        "slots": {"hours": 1},
                    },
                    {
                        # "1 minute 30": the seconds' unit left out.
                        "sentences": [
                            "[<timer_set>] [a|an] timer for {timer_minutes:minutes} minute[s] "
                            "[and] {timer_seconds:seconds}"
                        ]
                    },
                    {
                        # "set a timer for 5": minutes, most likely; asked, not set.
                        "sentences": ["<timer_set> [a|an] timer for {timer_minutes:minutes}"],
                        "metadata": {"unit_guessed": True},
                    },
                    {
                        "sentences": [
                            "[<timer_set>] [a] timer for a quarter of an hour",
                            "[<timer_set>] [a] quarter hour timer",
                        ],
                        "slots": {"minutes": 15},
                    },
                    {
                        # Lengths the library's ranges leave out; refused with the reason.
                        "sentences": [
                            "<timer_set> [a|an] timer for {timer_long:seconds} (days|weeks|"
                            "months|years)",
                            "<timer_set> [a|an] {timer_long:seconds} (day|week|month|year) timer",
                        ],
                        "metadata": {"too_long": True},
                    },
                ]
            },
            "HassTurnOn": {
                "data": [
                    {
                        "sentences": [
                            "<turn> on [the] {device_kind:kind}",
                            "<turn> [the] {device_kind:kind} on",
                            "[the] {device_kind:kind} on",
                            "(start|run) [the] ({name}|{device_kind:kind})",
                        ]
                    },
                    {
                        "sentences": [
                            "[all] [the] lights on",
                            "<turn> on [all] [the] lights",
                            "<turn> [all] [the] lights on",
                            "<turn> on every (light|lamp) [<in> [the] {area}]",
                            "<turn> every (light|lamp) on [<in> [the] {area}]",
                        ],
                        "slots": {"domain": "light"},
                        "metadata": {"imperative": True},
                    },
                ]
            },
            "HassTurnOff": {
                "data": [
                    {
                        "sentences": [
                            "<turn> off [the] {device_kind:kind}",
                            "<turn> [the] {device_kind:kind} off",
                            "[the] {device_kind:kind} off",
                            "stop [the] {device_kind:kind}",
                            "shut (off|down) [the] ({name}|{device_kind:kind})",
                            "shut [the] ({name}|{device_kind:kind}) (off|down)",
                        ]
                    },
                    {
                        "sentences": [
                            "[all] [the] lights (off|out)",
                            "lights out",
                            "(kill|shut off) [all] [the] lights",
                            "<turn> off [all] [the] lights",
                            "<turn> [all] [the] lights off",
                            "<turn> off every (light|lamp) [<in> [the] {area}]",
                            "<turn> every (light|lamp) off [<in> [the] {area}]",
                        ],
                        "slots": {"domain": "light"},
                        "metadata": {"imperative": True},
                    },
                    {"sentences": ["<turn> (off everything|everything off)"]},
                ]
            },
            "HassNevermind": {
                "data": [
                    {
                        "sentences": [
                            "forget (it|that|about it)",
                            "cancel that",
                            "(that's|that is) all",
                            "nothing",
                        ]
                    }
                ]
            },
            "HassGetCurrentTime": {
                "data": [
                    {
                        "sentences": [
                            "[the] time please",
                            "(what's|what is) the time [right] now",
                            "(do you know|tell me|can you tell me|could you tell me) what "
                            "time it is [now]",
                        ]
                    }
                ]
            },
            "HassGetCurrentDate": {
                "data": [
                    {
                        "sentences": [
                            "what day is (it|today) [today]",
                            "what day of the week is it [today]",
                            "(what's|what is) today",
                            "what's today's date",
                            "what is today's date",
                            "what date is it [today]",
                            "(what's|what is) the day [today]",
                        ]
                    }
                ]
            },
            "HassGetState": {
                "data": [
                    {
                        "sentences": [
                            "<is> [the] {device_kind:kind}[s] {on_off_states:state}",
                        ]
                    },
                    {
                        "sentences": ["<is> [the] ({name}|{device_kind:kind}) (running|going)"],
                        "slots": {"state": "on"},
                    },
                    {
                        "sentences": [
                            "(what's|what is) the (status|state) of [the] {name}",
                            "(is|are) [the] {name} on or off",
                        ]
                    },
                    {
                        "sentences": [
                            "<is> [all] [the] <light> {on_off_states:state} [<in> [the] {area}]",
                            "<is> [all] [the] {area} <light> {on_off_states:state}",
                        ],
                        "slots": {"domain": "light"},
                    },
                ]
            },
            # "it": a timer is the only thing here that is cancelled, paused or resumed.
            "HassCancelTimer": {
                "data": [
                    {
                        "sentences": [
                            "(delete|remove|clear|turn off|end|kill) [the|my] timer",
                            "(turn|switch) [the|my] timer off",
                            "[the] timer off",
                            "cancel it",
                        ]
                    }
                ]  # fmt: skip
            },
            "HassPauseTimer": {
                "data": [{"sentences": ["pause it", "(hold|freeze) [the|my] timer"]}]
            },
            "HassCancelAllTimers": {
                "data": [
                    {
                        "sentences": [
                            "(cancel|stop|delete|remove|clear) (every|both) timer[s]",
                            "(cancel|stop|delete|remove|clear) (all|both) [of] [the|my] timers",
                        ]
                    }
                ]
            },
            "HassUnpauseTimer": {
                "data": [
                    {
                        "sentences": [
                            "(unpause|un pause) [the|my] timer",
                            "start [the|my] timer again",
                            "(resume|unpause|continue) it",
                            "carry on [with] [the|my] timer",
                        ]
                    }
                ]
            },
            "HassIncreaseTimer": {
                "data": [
                    {
                        "sentences": ["add (a|one|another) minute to [the|my] timer"],
                        "slots": {"minutes": 1},
                    },
                    # Only a timer takes a length: "add five minutes", "five more minutes".
                    {
                        "sentences": [
                            "add [another] <timer_length> [more]",
                            "<timer_length> more",
                            "give (it|me) [another] <timer_length> [more]",
                        ]
                    },
                ]
            },
            "HassDecreaseTimer": {
                "data": [
                    {
                        "sentences": [
                            "(take|knock) (a|one) minute off [the|my] timer",
                            "remove (a|one) minute from [the|my] timer",
                        ],
                        "slots": {"minutes": 1},
                    }
                ]
            },
            "HassTimerStatus": {
                "data": [
                    {
                        "sentences": [
                            "how (much time|long) [is] (left|remaining)",
                            "how much longer",
                            "[how much] time left",
                            "what timers (do i have|are (running|set|on|going))",
                            "which timers are (running|set|on|going)",
                            "(do i have|are there) any timers [(running|set|on|going)]",
                            "(list|show) [me] [my|the] timers",
                            "check [on] [my|the] timer[s]",
                            "how many (hours|minutes|seconds) [are] (left|remaining) [on "
                            "[the|my] timer]",
                            "how long (until|till|before) [the|my] timer (goes off|rings|is "
                            "done|ends)",
                            "what is the status of [my|the] timer[s]",
                            "what's the status of [my|the] timer[s]",
                            "(how's|how is) [my|the] timer [doing|going]",
                            "(what's|what is) [my|the] timer at",
                            "(what's|what is) [my|the] timer [(saying|showing|on)]",
                            "how much longer (on|for) [the|my] timer",
                            "(is|are) [the|my] timer[s] [still] (running|going|on)",
                            "(what's|what is|how much is) left on [the|my] timer",
                            "how much time (do i have|have i got|is) left [on [the|my] timer]",
                            "how much time is on [the|my] timer",
                            "how (long|much time) [is] [left|remaining] on [the|my] "
                            "{timer_name:name} timer",
                            "how much time is (left|remaining) on [the|my] {timer_name:name}",
                            "when (will|does) [the|my] timer (go off|ring|end|finish)",
                        ]
                    }
                ]
            },
            # A command cut short (a pause taken for its end, or said so): asked for what
            # is missing; the answer completes the sentence (`complete`, "{}" for it).
            "ApplianceIncomplete": {
                "data": [
                    {
                        "sentences": ["[<timer_set>] [a|an] timer [for]"],
                        "metadata": {"ask": "For how long?", "complete": "set a timer for {}"},
                    },
                    {
                        "sentences": ["<timer_set> [a|an] {timer_name:name} timer [for]"],
                        "metadata": {
                            "ask": "For how long?",
                            "complete": "set a {name} timer for {}",
                        },
                    },
                    {
                        "sentences": ["<turn> on [the]"],
                        "metadata": {"ask": "Turn on what?", "complete": "turn on the {}"},
                    },
                    {
                        "sentences": ["<turn> off [the]"],
                        "metadata": {"ask": "Turn off what?", "complete": "turn off the {}"},
                    },
                    {
                        "sentences": ["(set|dim|<turn>) [the] {name} [brightness] to"],
                        "metadata": {
                            "ask": "To what brightness?",
                            "complete": "set the {name} to {}",
                        },
                    },
                    {
                        "sentences": ["(add|put) [something] (to|on) [my|the] shopping list"],
                        "metadata": {
                            "ask": "What should I add to your shopping list?",
                            "complete": "add {} to my shopping list",
                        },
                    },
                ]
            },
            # An alarm at a time of day: nothing here does things later; said so, with
            # what can be done instead ("set an alarm for 7 am", "wake me up at six").
            "ApplianceAlarmAt": {
                "data": [
                    {
                        "sentences": [
                            "<timer_set> [an|my|the] alarm (for|at) {alarm_time}",
                            "wake me [up] at {alarm_time}",
                            "<timer_set> [an|my|the] alarm",
                        ]
                    }
                ]
            },
            # The library names a to-do list by a Home Assistant entity ({name}); the
            # appliance's own lists by their names.
            "HassShoppingListCompleteItem": {
                "data": [
                    {
                        "sentences": [
                            "(take|cross|scratch) {shopping_list_item:item} off [my|the] "
                            "[shopping] list",
                        ]
                    }
                ]
            },
            "HassListAddItem": {
                "data": [
                    {
                        "sentences": [
                            "add {todo_list_item:item} to [my|the] {list_name:list} list",
                            "put {todo_list_item:item} (on|in) [my|the] {list_name:list} list",
                        ]
                    }
                ]
            },
            # The library's weather sentences name a weather entity of the house; a
            # place the house has no entity for ("in Paris") must still get the honest
            # answer, not the language model's invented forecast.
            "HassGetWeather": {
                "data": [
                    {
                        "sentences": [
                            "<what_is> [the] weather [going to be] [like] (for|in|at) "
                            "{weather_place} [<weather_when>]",
                            "<what_is> [the] weather [going to be] [like] <weather_when>",
                            "(what's|what is|whats) the (forecast|temperature) [(for|in) "
                            "{weather_place}] [<weather_when>]",
                            "(is it|will it) [going to] (rain|snow|be (sunny|windy|cold|hot|"
                            "warm)) [in {weather_place}] [<weather_when>]",
                            "how (hot|cold|warm) is it (outside|out|in {weather_place})",
                        ]
                    }
                ]
            },
            "ApplianceListClear": {
                "data": [
                    {
                        "sentences": [
                            "(clear|empty|erase|wipe) [out] <the> {list_name:list} list",
                            "(delete|remove|take off) everything (from|on) <the> "
                            "{list_name:list} list",
                            "(clear|empty|erase|wipe) [out] <the> list",
                        ]
                    }
                ]
            },
            "ApplianceListRead": {
                "data": [
                    {
                        "sentences": [
                            "(what's|what is|whats) on <the> {list_name:list} list",
                            "(read|tell me|list) <the> {list_name:list} list",
                            "(read|tell me|list) what's on <the> {list_name:list} list",
                            "what do i have on <the> {list_name:list} list",
                            "what['s| is] in <the> {list_name:list} list",
                            "read [me] [out] <the> {list_name:list} list",
                            "(what's|what is|whats) on <the> list",
                            "read [me] [out] <the> list",
                            "what do (i|we) need (to buy|to get|from the (shop|store))",
                        ]
                    }
                ]
            },
        },
        "lists": {
            "timer_long": {"range": {"from": 1, "to": 1000}},
            "alarm_time": {"wildcard": True},
            "weather_place": {"wildcard": True},
            "device_kind": {
                "values": [
                    {"in": "(light|lamp)", "out": "light"},
                    {"in": "fan", "out": "fan"},
                    {"in": "(switch|plug|socket|relay|heater)", "out": "switch"},
                ]
            },
            "list_name": {
                "values": [
                    {"in": "shopping", "out": "shopping"},
                    {"in": "grocery", "out": "shopping"},
                    {"in": "(to-do|to do|todo)", "out": "todo"},
                ]
            },
        },
        "expansion_rules": {
            "weather_when": "(today|tonight|tomorrow|this (morning|afternoon|evening|week|"
            "weekend)|right now|now)",
            "timer_length": "({timer_hours:hours} hour[s] [and] [{timer_minutes:minutes} "
            "minute[s]]|{timer_minutes:minutes} minute[s] [and] [{timer_seconds:seconds} "
            "second[s]]|{timer_seconds:seconds} second[s])",
            "a_bit": "(a (bit|little) [more]|slightly)",
        },
    }
}


@dataclass(frozen=True)
class SentenceLibrary:
    language: str
    data: dict[str, Any]
    """The library's file for the language with our sentences merged in (hassil's
    input format: intents, lists, expansion_rules, skip_words)."""

    @property
    def intent_names(self) -> list[str]:
        return sorted(self.data["intents"])


def available_languages() -> list[str]:
    try:
        from home_assistant_intents import get_languages
    except ImportError:
        return []
    return sorted(get_languages())


@cache
def load_library(language: str) -> SentenceLibrary:
    """The sentence library for `language`; raises ModelError naming the package."""
    try:
        import home_assistant_intents
    except ImportError as err:
        raise ModelError(
            f"the sentence library ({PACKAGE}) is not installed: {err}; {RESTORE}",
            code="sentence_library",
        ) from err
    try:
        data = home_assistant_intents.get_intents(language, json_load=_load_json)
    except (OSError, ValueError) as err:
        raise ModelError(
            f"the sentence library ({PACKAGE}) file for {language!r} cannot be read: {err}; "
            f"{RESTORE}",
            code="sentence_library",
        ) from err
    if data is None and language in available_languages():
        raise ModelError(
            f"the sentence library ({PACKAGE}) file for {language!r} is missing; {RESTORE}",
            code="sentence_library",
        )
    if data is None:
        known = ", ".join(available_languages()) or "none"
        raise ModelError(
            f"the sentence library ({PACKAGE}) has no language {language!r} "
            f"(it has: {known}); set conversation.language to one of them",
            code="sentence_library",
        )
    if not isinstance(data, dict) or not isinstance(data.get("intents"), dict):
        raise ModelError(
            f"the sentence library ({PACKAGE}) file for {language!r} is damaged "
            f"(no intents in it); {RESTORE}",
            code="sentence_library",
        )
    return SentenceLibrary(language, _merge(data, _OURS.get(language.split("-")[0], {})))


def _load_json(stream: Any) -> Any:
    try:
        return json.load(stream)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err})") from err


def _merge(library: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(library)
    for name, intent in ours.get("intents", {}).items():
        target = merged["intents"].setdefault(name, {"data": []})
        target["data"] = [*target.get("data", []), *copy.deepcopy(intent["data"])]
    for key in ("lists", "expansion_rules"):
        merged.setdefault(key, {}).update(copy.deepcopy(ours.get(key, {})))
    merged["skip_words"] = [*merged.get("skip_words", []), *ours.get("skip_words", [])]
    return merged
