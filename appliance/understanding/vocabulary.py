"""Whisper's initial prompt for this house: its device, room and timer names and the
command vocabulary, so that "porch light" is heard as "porch light" and not "Porsche
light".

Whisper takes the prompt as the text said just before, and copies its style. So the
prompt is a few ordinary sentences with normal casing and punctuation, not a word list.
Whisper reads at most 224 prompt tokens and keeps the last ones; a long prompt also costs
decoding time and makes the tiny model more likely to repeat it. So the names are capped,
most important first (device names in the configuration's order, then timer names, then
aliases, then rooms), within `MAX_CHARS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from appliance.sections.devices import DeviceConfig

MAX_CHARS = 400
"""The whole prompt's length: about 100 of whisper's tokens (English averages about four
characters a token), well under its 224."""
MAX_NAMES = 24
"""Names listed at most, however many fit in `MAX_CHARS`."""

_COMMANDS = {
    "en": (
        "Set a timer for ten minutes. Cancel the timer. What time is it? "
        "Add milk to the shopping list."
    ),
}
"""The command vocabulary, said the way people say it. Languages without one get the
names alone (an English sentence would pull whisper towards English)."""
_GENERIC = {
    "en": "Turn on the light. Turn off the kitchen lights. Dim the lamp to 50 percent.",
}
"""Device commands for a house with no devices configured."""


def bias_prompt(
    devices: Sequence[DeviceConfig], *, timer_names: Sequence[str] = (), language: str = "en"
) -> str:
    """A short initial prompt for whisper, built from the devices' names, aliases and
    rooms, the timers' names and the command vocabulary of `language`."""
    english = language.split("-")[0].lower() == "en"
    parts: list[str] = []
    if english and devices:
        first = devices[0].name.strip()
        parts.append(f"Turn on the {first}. Turn off all the lights.")
        dimmable = next((d for d in devices if d.gpio is not None and d.gpio.pwm), None)
        if dimmable is not None:
            parts.append(f"Dim the {dimmable.name.strip()} to 50 percent.")
    elif english:
        parts.append(_GENERIC["en"])
    commands = _COMMANDS.get("en") if english else None
    if commands:
        parts.append(commands)
    fixed = " ".join(parts)
    names = _ranked_names(devices, timer_names)
    budget = MAX_CHARS - len(fixed) - 1
    listed = _names_sentence(names, budget, english)
    return " ".join(p for p in (listed, fixed) if p)[:MAX_CHARS].strip()


def _ranked_names(devices: Sequence[DeviceConfig], timer_names: Sequence[str]) -> list[str]:
    """Each name once, most important first."""
    ranked: list[str] = []
    seen: set[str] = set()

    def add(names: Iterable[str]) -> None:
        for name in names:
            clean = " ".join(name.split())
            if clean and clean.lower() not in seen:
                seen.add(clean.lower())
                ranked.append(clean)

    add(d.name for d in devices)
    add(f"{name} timer" if "timer" not in name.lower() else name for name in timer_names)
    add(alias for d in devices for alias in d.aliases)
    add(d.room for d in devices)
    return ranked


def _names_sentence(names: Sequence[str], budget: int, english: bool) -> str:
    """ "The porch light, the kitchen light and the fan." (other languages: the names
    between commas) with as many names as fit."""
    taken: list[str] = []
    for name in names[:MAX_NAMES]:
        if len(_sentence([*taken, name], english)) > budget:
            break
        taken.append(name)
    return _sentence(taken, english) if taken else ""


def _sentence(names: Sequence[str], english: bool) -> str:
    if english:
        said = [f"the {name}" for name in names]
        text = said[0] if len(said) == 1 else f"{', '.join(said[:-1])} and {said[-1]}"
    else:
        text = ", ".join(names)
    return text[0].upper() + text[1:] + "."
