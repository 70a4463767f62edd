"""The GPIO pins, for every part that uses them (device outputs and buttons in
`actions`, the look button in `vision`): gpiozero's pin factory by name, and what to say
when a pin cannot be had."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError

DEFAULT_ORDER = ("lgpio", "rpigpio", "pigpio", "native")
"""The pin factories gpiozero tries when none is named, in its order."""


def make_pin_factory(name: str, chip: int = 0) -> Any:
    """gpiozero pin factory by name. "" = gpiozero's default (None: it honours
    $GPIOZERO_PIN_FACTORY, else lgpio…), except on a board that is not a Raspberry Pi but
    has GPIO chips, where gpiozero's factories cannot find their pins: there, as with
    "gpiochip", the lines of /dev/gpiochip`chip`."""
    if not name:
        if os.environ.get("GPIOZERO_PIN_FACTORY") or not gpio_chips():
            return None
        from appliance.gpiochip import on_a_raspberry_pi

        return None if on_a_raspberry_pi() else make_pin_factory("gpiochip", chip)
    if name == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        return MockFactory(pin_class=MockPWMPin)
    if name == "gpiochip":
        from appliance.gpiochip import ChipFactory

        try:
            return ChipFactory(chip)
        except Exception as err:
            raise ConfigError(
                f"GPIO chip /dev/gpiochip{chip} cannot be used: {err} (actions.gpio_chip "
                "names the chip; the service must be in the gpio group)"
            ) from err
    from importlib.metadata import entry_points

    try:
        return entry_points(group="gpiozero_pin_factories")[name].load()()
    except Exception as err:
        raise ConfigError(f"GPIO pin factory {name!r} cannot be used here: {err}") from err


def _no_gpio(err: BaseException) -> bool:
    return type(err).__name__ in ("BadPinFactory", "PinFactoryFallback")


def no_gpio_here(err: BaseException) -> bool:
    """The error (or its cause) says this machine has no GPIO at all, rather than that a
    pin is taken or wrong."""
    return _no_gpio(err) or (err.__cause__ is not None and _no_gpio(err.__cause__))


def pin_error(what: str, pin: int, err: Exception) -> str:
    from gpiozero.exc import GPIOPinInUse

    if isinstance(err, GPIOPinInUse):
        return f"GPIO pin {pin} for the {what} is already in use by another device or program"
    if _no_gpio(err):
        return (
            f"there is no GPIO on this machine for the {what} (pin {pin}); "
            'set actions.pin_factory = "mock" to try the configuration without hardware'
        )
    return f"GPIO pin {pin} for the {what} cannot be used: {err}"


def gpio_chips(root: Path = Path("/")) -> list[Path]:
    """The GPIO character devices (/dev/gpiochipN), in number order."""
    found = [p for p in (root / "dev").glob("gpiochip*") if re.fullmatch(r"gpiochip\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name.removeprefix("gpiochip")))


def usable(chip: Path) -> bool:
    """This user may open the chip for reading and writing (the gpio group)."""
    return os.access(chip, os.R_OK | os.W_OK)


def probe_pin_factory(name: str, chip: int = 0) -> tuple[str, str]:
    """Load the pin factory `name` ("" = gpiozero's order, or the chip on a board that is
    not a Pi, as the appliance would), say what it drives, and close it again: (its name,
    what it drives), or ("", why none loaded)."""
    reasons = []
    if not name and gpio_chips():
        try:
            chosen = make_pin_factory("", chip)
        except ConfigError as err:
            return "", str(err)
        if chosen is not None:
            try:
                return "gpiochip", f"{chosen.describe()}, on a board that is not a Raspberry Pi"
            finally:
                chosen.close()
    for candidate in [name] if name else DEFAULT_ORDER:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # gpiozero's fallback warnings
                factory = make_pin_factory(candidate, chip)
        except ConfigError as err:
            reasons.append(f"{candidate}: {err.__cause__ or err}")
            continue
        try:
            if hasattr(factory, "describe"):
                return candidate, factory.describe()
            board = getattr(getattr(factory, "board_info", None), "model", "")
            chip_number = getattr(factory, "_chip", None)
            where = f"/dev/gpiochip{chip_number}" if chip_number is not None else "its pins"
            return candidate, where + (f" of a Raspberry Pi {board}" if board else "")
        finally:
            factory.close()
    return "", "; ".join(reasons)
