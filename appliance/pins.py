"""The GPIO pins, for every part that uses them (device outputs and buttons in
`actions`, the look button in `vision`): gpiozero's pin factory by name, and what to say
when a pin cannot be had."""

from __future__ import annotations

from typing import Any

from appliance.errors import ConfigError


def make_pin_factory(name: str) -> Any:
    """gpiozero pin factory by name; "" = None (gpiozero picks its default, honouring
    $GPIOZERO_PIN_FACTORY)."""
    if not name:
        return None
    if name == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        return MockFactory(pin_class=MockPWMPin)
    from importlib.metadata import entry_points

    try:
        return entry_points(group="gpiozero_pin_factories")[name].load()()
    except Exception as err:
        raise ConfigError(f"GPIO pin factory {name!r} cannot be used here: {err}") from err


def pin_error(what: str, pin: int, err: Exception) -> str:
    from gpiozero.exc import GPIOPinInUse

    if isinstance(err, GPIOPinInUse):
        return f"GPIO pin {pin} for the {what} is already in use by another device or program"
    if type(err).__name__ in ("BadPinFactory", "PinFactoryFallback"):
        return (
            f"there is no GPIO on this machine for the {what} (pin {pin}); "
            'set actions.pin_factory = "mock" to try the configuration without hardware'
        )
    return f"GPIO pin {pin} for the {what} cannot be used: {err}"
