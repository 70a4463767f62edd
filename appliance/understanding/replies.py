"""One reply for the calls of one command: "Turned off the porch light and the kitchen
light.", "The porch light is on; the kitchen light and the bed light are off."."""

from __future__ import annotations

import re

from appliance.actions.builtin import format_number
from appliance.understanding.intents import Call


def group_reply(calls: tuple[Call, ...], replies: list[str]) -> str:
    tool = calls[0].tool
    if tool in ("device_on", "device_off") and all(c.tool == tool for c in calls):
        state = "on" if tool == "device_on" else "off"
        names = [str(c.arguments["device"]) for c in calls]
        return f"Turned {state} the {join_names(names)}."
    if all(c.tool == "device_state" for c in calls):
        return states_reply(replies)
    levels = {c.arguments.get("percent") for c in calls}
    if all(c.tool == "device_brightness" for c in calls) and len(levels) == 1:
        names = [f"the {c.arguments['device']}" for c in calls]
        level = format_number(float(calls[0].arguments["percent"]))
        return f"{join_names(names)[0].upper()}{join_names(names)[1:]} are at {level} percent."
    return " ".join(replies)


_STATE = re.compile(r"^The (.+) is (on|off)\.$")


def states_reply(replies: list[str]) -> str:
    """ "Are the lights on?" in one sentence, the ones on first: "The porch light is on;
    the kitchen light and the bed light are off." (not one sentence per light)."""
    by_state: dict[str, list[str]] = {"on": [], "off": []}
    unknown = []
    for reply in replies:
        said = _STATE.match(reply)
        if said:
            by_state[said[2]].append(said[1])
        else:
            unknown.append(reply)
    parts = []
    for state, names in by_state.items():
        if names:
            verb = "is" if len(names) == 1 else "are"
            parts.append(f"{join_names(['the ' + n for n in names])} {verb} {state}")
    if not parts:
        return " ".join(unknown)
    sentence = "; ".join(parts)
    return " ".join([sentence[0].upper() + sentence[1:] + ".", *unknown])


def join_names(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
