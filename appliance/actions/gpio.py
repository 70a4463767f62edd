"""GPIO through gpiozero: device outputs (relay/LED on, off, PWM brightness), a push-to-talk
button with a long-press hook, a mute switch, and a status light following the state.

The pin factory is injected (tests pass gpiozero's `MockFactory`). gpiozero calls button
callbacks from its own threads; they are handed to the event loop with
`loop.call_soon_threadsafe`, never run on gpiozero's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from appliance import events as ev
from appliance.actions.tools import ToolError
from appliance.errors import ConfigError
from appliance.pins import pin_error
from appliance.sections.devices import ActionsConfig, DeviceConfig, StatusLightConfig

_LOGGER = logging.getLogger(__name__)


class GpioOutputBackend:
    """A relay or LED on one pin; with `pwm`, dimmable."""

    def __init__(self, config: DeviceConfig, pin_factory: Any) -> None:
        from gpiozero import DigitalOutputDevice, PWMOutputDevice

        assert config.gpio is not None
        self.name = config.name
        self.dimmable = config.gpio.pwm
        kind = PWMOutputDevice if config.gpio.pwm else DigitalOutputDevice
        try:
            self._device = kind(
                config.gpio.pin,
                active_high=config.gpio.active_high,
                initial_value=False,
                pin_factory=pin_factory,
            )
        except Exception as err:
            raise ConfigError(pin_error(config.name, config.gpio.pin, err)) from err

    async def set_on(self, on: bool) -> None:
        # A pin write is a register write (microseconds): no thread needed.
        if on:
            self._device.on()
        else:
            self._device.off()

    async def set_brightness(self, level: float) -> None:
        if not self.dimmable:
            raise ToolError(f"The {self.name} can't be dimmed; I can only turn it on or off.")
        self._device.value = max(0.0, min(1.0, level))

    def is_on(self) -> bool | None:
        return bool(self._device.value)

    def close(self) -> None:
        self._device.close()


class UnavailableBackend:
    """A configured device whose hardware could not be set up: every command answers why
    (spoken and logged), and nothing else is affected."""

    dimmable = False

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    async def set_on(self, on: bool) -> None:
        raise ToolError(f"I can't use the {self.name}: {self.reason}.")

    async def set_brightness(self, level: float) -> None:
        raise ToolError(f"I can't use the {self.name}: {self.reason}.")

    def is_on(self) -> bool | None:
        return None

    def close(self) -> None:
        return None


class GpioControls:
    """The button and the mute switch. Callbacks run on the event loop."""

    def __init__(
        self,
        config: ActionsConfig,
        pin_factory: Any,
        loop: asyncio.AbstractEventLoop,
        *,
        on_press: Callable[[], None],
        on_hold: Callable[[], None],
        on_mute: Callable[[bool], None],
    ) -> None:
        from gpiozero import Button

        self._devices: list[Any] = []
        self._loop = loop

        def bridge(fn: Callable[..., None], *args: Any) -> Callable[[], None]:
            return lambda: loop.call_soon_threadsafe(fn, *args)

        try:
            button = config.button
            if button.pin is not None:
                try:
                    self.button = Button(
                        button.pin,
                        pull_up=button.pull_up,
                        hold_time=button.hold_seconds,
                        pin_factory=pin_factory,
                    )
                except Exception as err:
                    raise ConfigError(pin_error("button", button.pin, err)) from err
                self._devices.append(self.button)
                self.button.when_pressed = bridge(on_press)
                self.button.when_held = bridge(on_hold)
            switch = config.mute_switch
            if switch.pin is not None:
                try:
                    self.mute_switch = Button(switch.pin, pull_up=switch.pull_up,
                                              pin_factory=pin_factory)  # fmt: skip
                except Exception as err:
                    raise ConfigError(pin_error("mute switch", switch.pin, err)) from err
                self._devices.append(self.mute_switch)
                self.mute_switch.when_pressed = bridge(on_mute, True)
                self.mute_switch.when_released = bridge(on_mute, False)
                if self.mute_switch.is_pressed:
                    loop.call_soon(on_mute, True)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for device in self._devices:
            device.close()
        self._devices.clear()


# state → (colour for an RGB LED, (on, off) blink seconds or None for steady; None = dark)
_PATTERNS: dict[str, tuple[tuple[float, float, float], tuple[float, float] | None] | None] = {
    "idle": None,
    "listening": ((0.0, 0.0, 1.0), None),
    "follow_up": ((0.0, 0.6, 1.0), None),
    "thinking": ((1.0, 0.6, 0.0), (0.15, 0.15)),
    "speaking": ((0.0, 1.0, 0.0), None),
    "muted": ((1.0, 0.0, 0.0), (0.1, 1.9)),
    "error": ((1.0, 0.0, 0.0), (0.1, 0.1)),
}


class StatusLight:
    """An LED (or RGB LED) following `state` events, as a separate bus subscriber. While
    muted it shows "muted" whatever the state."""

    def __init__(self, config: StatusLightConfig, pin_factory: Any) -> None:
        from gpiozero import LED, RGBLED

        self.state = "idle"
        self.muted = False
        self._lit = True
        try:
            if config.red is not None:
                assert config.green is not None and config.blue is not None
                self._led: Any = RGBLED(
                    config.red,
                    config.green,
                    config.blue,
                    active_high=config.active_high,
                    pin_factory=pin_factory,
                )
                self.rgb = True
            else:
                assert config.pin is not None
                self._led = LED(config.pin, active_high=config.active_high, pin_factory=pin_factory)
                self.rgb = False
        except ConfigError:
            raise
        except Exception as err:
            pin = config.pin if config.pin is not None else config.red
            raise ConfigError(pin_error("status light", pin or 0, err)) from err

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.StateChanged):
            self.state = event.state
        elif event.type == "muted":
            self.muted = bool(getattr(event, "muted", False))
        else:
            return
        self.show("muted" if self.muted else self.state)

    @property
    def lit(self) -> bool:
        """False: dark whatever the state (turned off from Home Assistant)."""
        return self._lit

    @lit.setter
    def lit(self, lit: bool) -> None:
        self._lit = bool(lit)
        self.show("muted" if self.muted else self.state)

    def show(self, state: str) -> None:
        pattern = _PATTERNS.get(state) if self._lit else None
        if pattern is None:
            self._led.off()
            return
        colour, blink = pattern
        if self.rgb:
            if blink is None:
                self._led.color = colour
            else:
                self._led.blink(on_time=blink[0], off_time=blink[1], on_color=colour)
        elif blink is None:
            self._led.on()
        else:
            self._led.blink(on_time=blink[0], off_time=blink[1])

    def close(self) -> None:
        self._led.close()
