"""The library's intents as our tools: what each recognised sentence does on this board.

`plan_for` turns a `Recognition` into a `Plan`: the tool calls to run, or a sentence to
say instead (a refusal with its reason, or "which light?"). It runs nothing itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from appliance.actions.devices import Ambiguous, Device
from appliance.actions.numbers import spoken_duration, timer_label
from appliance.sections.devices import normalise_name
from appliance.understanding.recognition import DOMAINS, Recognition

if TYPE_CHECKING:
    from appliance.understanding.handler import IntentHandler


@dataclass(frozen=True)
class Call:
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def with_device(self, name: str) -> Call:
        return replace(self, arguments={**self.arguments, "device": name})


@dataclass(frozen=True)
class Plan:
    calls: tuple[Call, ...] = ()
    answer: str | None = None
    """Said instead of running anything (a refusal, or the "which one?" question)."""
    tool: str = ""
    """The tool the request was for (events, the audit log)."""
    confirm: bool = False
    """Ask before running the calls even though the match is sure."""
    question: str = ""
    """The confirmation question, when not the usual "did you mean …?"."""
    which: tuple[Device, ...] = ()
    """Candidates of a "which one?" question; `which_calls` get the chosen one's name."""
    which_calls: tuple[Call, ...] = ()
    complete: str = ""
    """With `answer` (the question for what is missing): the sentence the answer completes,
    "{}" standing for it ("set a timer for {}")."""


def _say(answer: str, tool: str = "") -> Plan:
    return Plan(answer=answer, tool=tool)


_MISSING = {
    "HassGetWeather": "I have no weather source on this device, so I can't tell you the weather.",
    "HassClimateGetTemperature": "I have no temperature sensor set up, so I can't tell.",
    "HassClimateSetTemperature": "I have no thermostat to control.",
    "HassClimateSetFanMode": "I have no thermostat to control.",
    "HassBroadcast": "I can't broadcast to other rooms: I'm the only speaker here.",
    "HassSetPosition": "I have no blinds, covers or valves to control.",
    "HassVacuumStart": "I have no vacuum cleaner to control.",
    "HassVacuumReturnToBase": "I have no vacuum cleaner to control.",
    "HassVacuumCleanArea": "I have no vacuum cleaner to control.",
    "HassLawnMowerStartMowing": "I have no lawn mower to control.",
    "HassLawnMowerDock": "I have no lawn mower to control.",
    "HassFanSetSpeed": "I can only turn fans on or off, not set their speed.",
}
_NO_ALARMS = (
    "I can't set an alarm for a time of day: I only have timers. Say, for "
    "example, 'set a timer for eight hours'."
)
_MEDIA = "I can't play or control media: there's no media player on this device."
_NO_DEVICE_DOMAIN = {
    "cover": "blinds or covers", "lock": "locks", "media_player": "media players",
    "climate": "thermostats", "scene": "scenes", "script": "scripts", "vacuum": "vacuums",
    "valve": "valves", "lawn_mower": "lawn mowers",
}  # fmt: skip
_SWITCHING = {"HassTurnOn": "device_on", "HassTurnOff": "device_off", "HassToggle": "device_toggle"}
_TIMER_VERBS = {"timer_cancel": ("cancel", ""), "timer_pause": ("pause", "running"),
                "timer_resume": ("resume", "paused")}  # fmt: skip
"""Each timer tool's verb, and the state of the timers it can act on ("" = any)."""
_TIMER_TOOLS = {
    "HassCancelTimer": "timer_cancel",
    "HassPauseTimer": "timer_pause",
    "HassUnpauseTimer": "timer_resume",
}


def plan_for(found: Recognition, house: IntentHandler) -> Plan | None:
    """What to do for a recognised sentence; None leaves it to the next handler."""
    intent, slots = found.intent, found.slots
    if found.metadata.get("later"):
        return _say("I can only do that now, not at a later time. Say it again when you "
                    "want it, or set a timer to remind you.",
                    _SWITCHING.get(intent, "device_brightness"))  # fmt: skip
    if intent in _SWITCHING:
        return _switch(_SWITCHING[intent], slots, house)
    if intent == "HassLightSet":
        return _light_set(slots, house, found.metadata)
    if intent == "HassGetState":
        return _state(slots, house)
    if intent.endswith("Timer") or intent in ("HassCancelAllTimers", "HassTimerStatus"):
        return _timer(found, house)
    if intent == "HassGetCurrentTime":
        return Plan((Call("time_now"),))
    if intent == "HassGetCurrentDate":
        return Plan((Call("date_today"),))
    if intent == "HassNevermind":
        return Plan(answer="")
    if intent.startswith(("HassShoppingList", "HassList", "ApplianceList")):
        return _list(intent, slots, house)
    if intent == "ApplianceIncomplete":
        return _incomplete(found)
    if intent == "ApplianceAlarmAt":
        return _say(_NO_ALARMS, "timer_start")
    if intent in _MISSING:
        return _say(_MISSING[intent])
    if intent.startswith(("HassMedia", "HassSetVolume")):
        return _say(_MEDIA)
    return None


_ARTICLES = {"the", "my", "a", "an", "this", "that", "our"}


def _incomplete(found: Recognition) -> Plan:
    """A command cut short ("set a timer for", "turn off the"): what is missing is asked
    for, and the answer completes the sentence."""
    sentence = str(found.metadata.get("complete", ""))
    name = str(found.slots.get("name", ""))
    if set(name.split()) <= _ARTICLES:  # "start the timer": "the" is no timer's name
        sentence = sentence.replace("{name} ", "")
    sentence = sentence.replace("{name}", name)
    return Plan(answer=str(found.metadata.get("ask", "")), complete=sentence)


# ---- devices ------------------------------------------------------------------------


def _switch(tool: str, slots: dict[str, Any], house: IntentHandler) -> Plan:
    domain = slots.get("domain")
    if isinstance(domain, str) and domain not in DOMAINS.values():
        noun = _NO_DEVICE_DOMAIN.get(domain, f"{domain.replace('_', ' ')}s")
        return _say(f"I have no {noun} to control.", tool)
    targets = _targets(slots, house, tool)
    if isinstance(targets, Plan):
        return targets
    return Plan(tuple(Call(tool, {"device": d.name}) for d in targets), tool=tool)


def _light_set(slots: dict[str, Any], house: IntentHandler, found_metadata: dict[str, Any]) -> Plan:
    tool = "device_brightness"
    targets = _targets(slots, house, tool)
    if isinstance(targets, Plan):
        return targets
    names = _join([f"the {d.name}" for d in targets])
    if "brightness" in slots or "level" in found_metadata:
        percent = float(slots.get("brightness", found_metadata.get("level", 0)))
        if not 0 <= percent <= 100:
            return _say(
                f"Brightness goes from 0 to 100 percent, so I left {names} as it was.", tool
            )
        return Plan(tuple(Call(tool, {"device": d.name, "percent": percent}) for d in targets),
                    tool=tool)  # fmt: skip
    what = "colour" if "color" in slots else "colour temperature"
    can = "dim it or turn it on and off" if targets[0].backend.dimmable else "turn it on and off"
    return _say(f"I can't change the {what} of {names}; I can only {can}.", "device_color")


def _state(slots: dict[str, Any], house: IntentHandler) -> Plan | None:
    domain = slots.get("domain")
    if isinstance(domain, str) and domain not in DOMAINS.values():
        return None  # "who is the president" reads as a person's state: a question
    targets = _targets(slots, house, "device_state")
    if isinstance(targets, Plan):
        return targets
    return Plan(tuple(Call("device_state", {"device": d.name}) for d in targets),
                tool="device_state")  # fmt: skip


def _targets(slots: dict[str, Any], house: IntentHandler, tool: str) -> list[Device] | Plan:
    """The devices a request names: one by name, all of a kind in a room, all of a kind;
    or the sentence that says why there are none, or asks which."""
    if not len(house.devices):
        return _say("I don't have any devices set up.", tool)
    if "name" in slots:
        device = house.device_named(str(slots["name"]))
        if device is None:
            return _say(f"I don't know a device called {slots['name']}.", tool)
        return [device]
    if "kind" in slots:
        found = house.resolve_kind(str(slots["kind"]))
        if found is None:
            return _say(f"I don't have a {slots['kind']} set up.", tool)
        if isinstance(found, Ambiguous):
            return Plan(answer=found.question(), tool=tool, which=found.candidates,
                        which_calls=(Call(tool, {"device": ""}),))  # fmt: skip
        return [found.device]
    domain = slots.get("domain")
    area = slots.get("area")
    pool = [d for d in house.devices if domain is None or DOMAINS[d.config.kind] == domain]
    if area is not None:
        pool = [d for d in pool if normalise_name(d.config.room) == normalise_name(str(area))]
    if not pool:
        kind = f"{domain}s" if isinstance(domain, str) else "devices"
        where = f" in the {area}" if area else ""
        return _say(f"There are no {kind}{where} I can control.", tool)
    return pool


# ---- timers -------------------------------------------------------------------------


def _length(slots: dict[str, Any]) -> float:
    return (
        float(slots.get("hours", 0)) * 3600
        + float(slots.get("minutes", 0)) * 60
        + float(slots.get("seconds", 0))
    )


def _timer(found: Recognition, house: IntentHandler) -> Plan:
    intent, slots = found.intent, found.slots
    if not house.has_tool("timer_set"):
        return _say("Timers aren't set up on this appliance.", "timer_set")
    name = normalise_name(str(slots.get("name", "")))
    started = (
        float(slots.get("start_hours", 0)) * 3600
        + float(slots.get("start_minutes", 0)) * 60
        + float(slots.get("start_seconds", 0))
    )
    if not name and started > 0:  # "cancel the ten minute timer": named by its length
        name = timer_label(started)
    if intent == "HassStartTimer":
        return _start_timer(found, name, house)
    if _not_a_name(name, house, asking=True):
        name = ""  # "what's the timer status": the library read "what's the" as its name
    name = house.timer_named(name)  # "the past timer": the pasta timer, named as it is
    if intent == "HassCancelAllTimers":
        return Plan((Call("timer_cancel", {"all": True, "name": name}),), tool="timer_cancel")
    if intent in _TIMER_TOOLS:
        tool = _TIMER_TOOLS[intent]
        if not house.has_tool(tool):
            return _say("I can't do that with timers yet.", tool)
        verb, state = _TIMER_VERBS[tool]
        choices = house.timer_labels(state) if not name else []
        if len(choices) > 1:  # asked, and the answer ("the pasta one") completes it
            return Plan(answer=f"Which timer do you want to {verb}: "
                               f"{_join(['the ' + c for c in choices], 'or')}?",
                        tool=tool, complete=f"{verb} the {{}} timer")  # fmt: skip
        return Plan((Call(tool, {"name": name}),), tool=tool)
    if intent == "HassTimerStatus":
        if name or house.running_timers() == 1:
            return Plan((Call("timer_remaining", {"name": name}),), tool="timer_remaining")
        return Plan((Call("timer_list"),), tool="timer_list")
    if intent in ("HassIncreaseTimer", "HassDecreaseTimer"):
        seconds = _length(slots) * (1 if intent == "HassIncreaseTimer" else -1)
        if not house.has_tool("timer_adjust"):
            return _say("I can't change a running timer yet.", "timer_adjust")
        return Plan((Call("timer_adjust", {"seconds": seconds, "name": name}),),
                    tool="timer_adjust")  # fmt: skip
    return _say("I can't do that with timers.", "timer")


_NOT_A_NAME = {
    "a",
    "an",
    "and",
    "the",
    "end",
    "in",
    "on",
    "it",
    "at",
    "to",
    "of",
    "or",
    "as",
    "is",
    "if",
    "for",
    "from",
    "with",
    "this",
    "that",
    "then",
    "than",
    "up",
    "off",
}
"""Little English words a timer is never named: a name made of one was misheard."""
_ASKING = {"what", "whats", "what's", "how", "hows", "how's", "is", "are", "my", "your", "me",
           "tell", "give", "check", "much", "long", "where", "which", "cancel", "stop",
           "pause", "resume", "timer", "timers"}  # fmt: skip
"""Words of a question or a command about a timer, which the library can read as the
timer's name ("what's the timer status", whisper's "cancel, cancel the timer")."""


def _not_a_name(name: str, house: IntentHandler, *, asking: bool = False) -> bool:
    """Made only of little words (and, `asking`, of a question's words)."""
    english = house.recognizer.library.language.split("-")[0] == "en"
    words = set(name.split())
    return english and bool(words) and words <= (_NOT_A_NAME | _ASKING if asking else _NOT_A_NAME)


def _start_timer(found: Recognition, name: str, house: IntentHandler) -> Plan:
    slots = found.slots
    longest = house.max_timer_hours * 3600
    if found.metadata.get("too_long"):
        return _say(f"That's too long: the longest timer I can set is "
                    f"{spoken_duration(longest)}.", "timer_set")  # fmt: skip
    seconds = _length(slots)
    if seconds <= 0:
        return _say("A timer needs a length. Say, for example, 'set a timer for ten minutes'.",
                    "timer_set")  # fmt: skip
    if seconds > longest:
        return _say(f"That's too long: the longest timer I can set is "
                    f"{spoken_duration(longest)}.", "timer_set")  # fmt: skip
    call = Call("timer_set", {"seconds": seconds, "name": name})
    if found.metadata.get("unit_guessed"):
        return Plan((call,), tool="timer_set", confirm=True,
                    question=f"A timer for {spoken_duration(seconds)}?")  # fmt: skip
    if _not_a_name(name, house):
        # "set an end timer": whisper's "egg", "ham", "bread" are short and often come
        # out as a little word no one names a timer; asked about, not set.
        return Plan((call,), tool="timer_set", confirm=True,
                    question=f"Did you mean a timer called {name}, for "
                             f"{spoken_duration(seconds)}?")  # fmt: skip
    if "conversation_command" in slots:
        # "do X in ten minutes": nothing here runs a command later. Said as it often
        # is misheard ("at set of time after 30 seconds"), a timer is the likely wish.
        return Plan((call,), tool="timer_set", confirm=True,
                    question=f"I can't run a command later. Do you want a timer for "
                             f"{spoken_duration(seconds)}?")  # fmt: skip
    return Plan((call,), tool="timer_set")


# ---- lists --------------------------------------------------------------------------


def _list(intent: str, slots: dict[str, Any], house: IntentHandler) -> Plan:
    if not house.has_tool("list_add"):
        return _say("I don't keep lists on this appliance yet.", "list_add")
    which = _list_name(slots)
    if which is None:
        return _say(f"I only keep a shopping list and a to-do list, not a {slots.get('name')} "
                    "list.", "list_add")  # fmt: skip
    item = str(slots.get("item", "")).strip()
    if normalise_name(item) in _PRONOUN_ITEMS:  # "put them on my list": what is "them"?
        spoken = _spoken_list(which)
        return Plan(answer=f"What should I put on your {spoken}?", tool="list_add",
                    complete=f"add {{}} to my {spoken}")  # fmt: skip
    if intent == "ApplianceListClear":  # every item at once: asked first
        return Plan((Call("list_clear", {"list": which}),), tool="list_clear", confirm=True,
                    question=f"Do you want me to empty your {_spoken_list(which)}?")  # fmt: skip
    if intent == "ApplianceListRead":
        return Plan((Call("list_read", {"list": which}),), tool="list_read")
    tool = {"Add": "list_add", "Complete": "list_complete", "Remove": "list_remove"}
    for verb, name in tool.items():
        if verb in intent:
            return Plan((Call(name, {"item": item, "list": which}),), tool=name)
    return _say("I can't do that with lists.", "list_add")


_PRONOUN_ITEMS = {"it", "them", "that", "this", "those", "these", "him", "her", "one"}


def _spoken_list(which: str) -> str:
    return "to-do list" if which == "todo" else f"{which} list"


def _list_name(slots: dict[str, Any]) -> str | None:
    named = normalise_name(str(slots.get("list", slots.get("name", "shopping"))))
    if named in ("shopping", "grocery", "groceries", "shopping list"):
        return "shopping"
    if named.replace(" ", "") in ("todo", "todolist", "to do"):
        return "todo"
    return None


def _join(parts: Sequence[str], last: str = "and") -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" {last} " + parts[-1]
