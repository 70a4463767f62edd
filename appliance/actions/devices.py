"""Devices the appliance can switch, behind one small interface, and how a spoken phrase
("the front light", "kitchen lamp", "the light") is matched to exactly one of them.

Matching must be right, not merely close: a phrase that names no device, or fits several
equally, is reported as such (`Unknown` / `Ambiguous`) and nothing is switched.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from appliance.errors import ConfigError
from appliance.sections.devices import DEVICE_KINDS, DeviceConfig, normalise_name

MATCH_THRESHOLD = 0.8
"""Similarity a spoken phrase needs to a configured name (0–1). whisper's "porsche
light" for "porch light" scores 0.92; "kitchen light" vs "kitchen fan" 0.67."""
_FILLER = {"the", "my", "a", "an", "our", "this", "that", "please", "one", "in", "on",
           "of", "at", "for", "me", "now"}  # fmt: skip
PLURALS = {"lights": "light", "lamps": "lamp", "fans": "fan", "switches": "switch",
            "plugs": "plug", "relays": "relay", "heaters": "heater",
            "sockets": "socket"}  # fmt: skip


class DeviceBackend(Protocol):
    """What drives a device: a GPIO pin (`gpio.GpioOutputBackend`) or MQTT topics
    (`appliance.mqtt.device.MqttDevice`)."""

    dimmable: bool

    async def set_on(self, on: bool) -> None: ...

    async def set_brightness(self, level: float) -> None:
        """0.0–1.0."""

    def is_on(self) -> bool | None:
        """Last known state; None = unknown."""

    def close(self) -> None: ...


MqttFactory = Callable[[str, dict[str, Any]], DeviceBackend]


class MemoryBackend:
    """A device that only remembers what it was told: for unit tests and `pin_factory`-less
    trials. Records every command in `commands`."""

    def __init__(self, *, dimmable: bool = True, state: bool | None = False) -> None:
        self.dimmable = dimmable
        self.state = state
        self.level = 1.0 if state else 0.0
        self.commands: list[tuple[str, Any]] = []
        self.closed = False

    async def set_on(self, on: bool) -> None:
        self.commands.append(("on", on))
        self.state = on
        self.level = 1.0 if on else 0.0

    async def set_brightness(self, level: float) -> None:
        self.commands.append(("brightness", level))
        self.level = level
        self.state = level > 0

    def is_on(self) -> bool | None:
        return self.state

    def close(self) -> None:
        self.closed = True


@dataclass
class Device:
    config: DeviceConfig
    backend: DeviceBackend

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class Match:
    device: Device


@dataclass(frozen=True)
class Ambiguous:
    candidates: tuple[Device, ...]
    kind: str

    def question(self) -> str:
        names = [f"the {d.name}" for d in self.candidates]
        listed = ", ".join(names[:-1]) + " or " + names[-1]
        return f"Which {self.kind}: {listed}?"


@dataclass(frozen=True)
class Unknown:
    phrase: str


Resolution = Match | Ambiguous | Unknown


class DeviceDirectory:
    """The configured devices, looked up by what was said."""

    def __init__(self, devices: Iterable[Device]) -> None:
        self.devices: list[Device] = list(devices)
        self._by_name = {d.name: d for d in self.devices}

    def __iter__(self):  # noqa: ANN204 - a plain iterator
        return iter(self.devices)

    def __len__(self) -> int:
        return len(self.devices)

    def get(self, name: str) -> Device | None:
        return self._by_name.get(name)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.devices]

    def close(self) -> None:
        for device in self.devices:
            try:
                device.backend.close()
            except Exception:  # closing one device must not keep the others open
                pass

    def resolve(self, phrase: str, among: Sequence[Device] | None = None) -> Resolution:
        """The one device a spoken phrase names, or why there is none."""
        pool = list(among if among is not None else self.devices)
        words = _content_words(phrase)
        spoken = " ".join(words)
        if not spoken:
            return Unknown(phrase)
        scored = sorted(((self._score(spoken, d), d) for d in pool), key=lambda s: -s[0])
        good = [(score, d) for score, d in scored if score >= MATCH_THRESHOLD]
        if good:
            best = good[0][0]
            top = [d for score, d in good if best - score < 0.05]
            if len(top) == 1:
                return Match(top[0])
            return Ambiguous(tuple(top), top[0].config.kind)
        # "the light", "the kitchen light(s)": by kind (and room) rather than by name.
        kinds = [w for w in words if w in DEVICE_KINDS]
        if len(kinds) == 1:
            kind = kinds[0]
            rest = [w for w in words if w != kind]
            candidates = [d for d in pool if _kind_matches(d, kind, strict=True)]
            if not candidates:  # "the lamp" may be a light, and the reverse
                candidates = [d for d in pool if _kind_matches(d, kind, strict=False)]
            if rest:
                room = " ".join(rest)
                candidates = [
                    d for d in candidates if d.config.room and _similar(room, d.config.room)
                ]
            if len(candidates) == 1:
                return Match(candidates[0])
            if len(candidates) > 1:
                return Ambiguous(tuple(candidates), kind)
        return Unknown(phrase)

    def pick(self, answer: str, candidates: Sequence[Device]) -> Device | None:
        """The answer to "which light?": the one candidate it names by a word that only
        that candidate has ("porch", "the kitchen one"); None if it names none or several."""
        found = self.resolve(answer, among=candidates)
        if isinstance(found, Match):
            return found.device
        said = set(_content_words(answer))
        kinds = set(DEVICE_KINDS)
        chosen = []
        for device in candidates:
            own = {w for n in device.config.names for w in _content_words(n)} - kinds
            own |= set(_content_words(device.config.room))
            if any(_similar(word, mine) for word in said for mine in own):
                chosen.append(device)
        return chosen[0] if len(chosen) == 1 else None

    def mentioned(self, text: str) -> list[Device]:
        """Devices whose name or alias appears (fuzzily) anywhere in a text: used to check
        that a device the language model picked was really spoken of."""
        words = _content_words(text)
        found = []
        for device in self.devices:
            config = device.config
            room = (f"{config.room} {config.kind}",) if config.room else ()
            for name in (*config.names, *room):
                target = _content_words(name)
                n = len(target)
                windows = (" ".join(words[i : i + n]) for i in range(max(0, len(words) - n) + 1))
                if any(_similar(w, " ".join(target)) for w in windows):
                    found.append(device)
                    break
        return found

    @staticmethod
    def _score(spoken: str, device: Device) -> float:
        config = device.config
        names = [" ".join(_content_words(n)) for n in config.names]
        if config.room:
            names.append(" ".join(_content_words(f"{config.room} {config.kind}")))
        return max(difflib.SequenceMatcher(None, spoken, n).ratio() for n in names)


def _content_words(phrase: str) -> list[str]:
    words = normalise_name(phrase).split()
    return [PLURALS.get(w, w) for w in words if w not in _FILLER]


def _kind_matches(device: Device, kind: str, *, strict: bool) -> bool:
    if device.config.kind == kind:
        return True
    if any(kind in _content_words(name) for name in device.config.names):
        return True
    lights = ("light", "lamp")
    return not strict and kind in lights and device.config.kind in lights


def _similar(a: str, b: str) -> bool:
    return difflib.SequenceMatcher(None, a, normalise_name(b)).ratio() >= MATCH_THRESHOLD


def build_devices(
    configs: Sequence[DeviceConfig],
    *,
    make_gpio: Callable[[DeviceConfig], DeviceBackend] | None,
    make_mqtt: MqttFactory | None,
) -> DeviceDirectory:
    """Create every configured device's backend. A device that cannot be set up raises
    ConfigError naming it (and devices created so far are closed)."""
    made: list[Device] = []
    try:
        for config in configs:
            if config.mqtt is not None:
                if make_mqtt is None:
                    raise ConfigError(
                        f'device "{config.name}" uses MQTT but no [mqtt] broker is configured'
                    )
                made.append(Device(config, make_mqtt(config.name, dict(config.mqtt))))
            else:
                if make_gpio is None:
                    raise ConfigError(f'device "{config.name}" uses GPIO but GPIO is not available')
                made.append(Device(config, make_gpio(config)))
    except BaseException:
        DeviceDirectory(made).close()
        raise
    return DeviceDirectory(made)
