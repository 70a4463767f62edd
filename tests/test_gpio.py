"""GPIO through gpiozero's own MockFactory: output pin histories, driven input pins."""

from __future__ import annotations

import asyncio

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance import events as ev
from appliance.actions.gpio import StatusLight
from appliance.errors import ConfigError
from appliance.house import Actions
from appliance.sections.devices import (
    ActionsConfig,
    ButtonConfig,
    DeviceConfig,
    GpioOutput,
    MuteSwitchConfig,
    StatusLightConfig,
)
from tests.actions_fakes import ControlsSpy
from tests.fakes import Recorder

DEVICES = [
    DeviceConfig("porch light", "light", ("front light",), "outside", GpioOutput(17, pwm=True)),
    DeviceConfig("garden pump", "relay", (), "garden", GpioOutput(27, active_high=False)),
]


@pytest.fixture
def factory():
    pins = MockFactory(pin_class=MockPWMPin)
    yield pins
    pins.reset()


def states(factory, pin: int) -> list[float]:
    return [s.state for s in factory.pin(pin).states]


def make(tmp_path, factory, config=None, devices=DEVICES):
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    return Actions(devices, config or ActionsConfig(), bus, tmp_path, pin_factory=factory), recorder


def test_spoken_commands_drive_the_pins(tmp_path, factory):
    actions, recorder = make(tmp_path, factory)

    async def main():
        async with actions:
            said = []
            for text in ("Turn on the porch light.", "Set the front light to 25 percent.",
                         "Turn on the garden pump.", "Is the garden pump on?",
                         "Toggle the garden pump.", "Turn the porch light off."):  # fmt: skip
                said.append((await actions.intents.handle(text, 1)).reply)
            return said

    said = asyncio.run(main())
    assert said == [
        "The porch light is on.",
        "The porch light is at 25 percent.",
        "The garden pump is on.",
        "The garden pump is on.",
        "The garden pump is off.",
        "The porch light is off.",
    ]
    assert states(factory, 17) == [0, 1.0, 0.25, 0]
    # active low: off (at start) is high, on drives the pin low; released at close
    assert states(factory, 27) == [0, 1, 0, 1, 0]
    assert all(a.ok for a in recorder.of("action"))


def test_a_pin_already_in_use_is_answered_not_toggled(tmp_path, factory):
    from gpiozero import LED

    squatter = LED(17, pin_factory=factory)  # another program holds pin 17
    actions, recorder = make(tmp_path, factory)

    async def main():
        async with actions:
            broken = await actions.intents.handle("Turn on the porch light.", 1)
            fine = await actions.intents.handle("Turn on the garden pump.", 2)
            return broken, fine

    broken, fine = asyncio.run(main())
    assert broken.reply == (
        "I can't use the porch light: GPIO pin 17 for the porch light is already in use "
        "by another device or program."
    )
    assert fine.reply == "The garden pump is on."
    assert not squatter.is_lit and states(factory, 17) == [0]
    assert [(a.tool, a.ok) for a in recorder.of("action")] == [("device_on", False),
                                                                ("device_on", True)]  # fmt: skip
    squatter.close()


def test_a_gpio_chip_that_vanishes_is_answered_as_a_failure_and_nothing_else_stops(
    tmp_path, factory
):
    """The chip goes away under a running appliance (a HAT unplugged, a driver unbound):
    the pin write fails; the reply says so, claims nothing, and the next command works."""
    actions, recorder = make(tmp_path, factory)

    async def main():
        async with actions:
            pin = factory.pin(27)

            def gone(value):
                raise OSError(19, "No such device: /dev/gpiochip0")

            kept, pin._set_state = pin._set_state, gone
            lost = await actions.intents.handle("Turn on the garden pump.", 1)
            fine = await actions.intents.handle("Turn on the porch light.", 2)
            pin._set_state = kept
            return lost, fine

    lost, fine = asyncio.run(main())
    assert "couldn't" in lost.reply.lower() and "No such device" in lost.reply
    assert "is on" not in lost.reply
    assert fine.reply == "The porch light is on."
    assert [(a.tool, a.ok) for a in recorder.of("action")] == [("device_on", False),
                                                                ("device_on", True)]  # fmt: skip


def test_button_mute_switch_and_long_press(tmp_path, factory):
    config = ActionsConfig(
        button=ButtonConfig(pin=5, hold_seconds=0.5), mute_switch=MuteSwitchConfig(pin=6)
    )
    actions, recorder = make(tmp_path, factory, config)
    controls = ControlsSpy()
    held = []
    actions.long_press_hooks.append(lambda: held.append(True))

    async def main():
        async with actions:
            actions.attach(controls)
            assert controls.handlers == [actions.intents]
            button, switch = factory.pin(5), factory.pin(6)
            button.drive_low()  # pressed (pull-up: pressed is low)
            await until(lambda: controls.listens)
            button.drive_high()
            switch.drive_low()  # mute switch closed
            await until(lambda: controls.mutes)
            assert controls.muted
            switch.drive_high()
            await until(lambda: len(controls.mutes) == 2)
            button.drive_low()
            await until(lambda: held, seconds=3)
            button.drive_high()

    asyncio.run(main())
    assert controls.listens[0] == "button"
    assert controls.mutes == [(True, "switch"), (False, "switch")]
    buttons = [a for a in recorder.of("action") if a.path == "button"]
    assert [(a.tool, a.arguments, a.ok) for a in buttons] == [
        ("mute", {"muted": True}, True), ("mute", {"muted": False}, True),
        ("reset_pairing", {}, True),
    ]  # fmt: skip


async def until(condition, seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_the_status_light_follows_the_state_and_shows_muted(factory):
    led = StatusLight(StatusLightConfig(pin=13), factory)
    bus = ev.EventBus()
    bus.subscribe(led)
    pin = factory.pin(13)

    def state(name):
        bus.publish(ev.StateChanged(turn=0, stream_time=0.0, state=name))

    state("listening")
    assert pin.state == 1
    state("idle")
    assert pin.state == 0
    state("thinking")  # blinks in gpiozero's thread
    pin.clear_states()
    import time

    time.sleep(0.5)
    assert len(pin.states) >= 2
    state("speaking")
    assert pin.state == 1
    led.muted = True
    led.show("muted")
    state("idle")  # still muted: keeps blinking the muted pattern
    assert led.muted
    led.close()


def test_the_rgb_status_light_takes_a_colour_per_state(factory):
    led = StatusLight(StatusLightConfig(red=20, green=21, blue=22), factory)
    led(ev.StateChanged(turn=0, stream_time=0.0, state="listening"))
    assert (factory.pin(20).state, factory.pin(21).state, factory.pin(22).state) == (0, 0, 1)
    led(ev.StateChanged(turn=0, stream_time=0.0, state="speaking"))
    assert (factory.pin(20).state, factory.pin(21).state, factory.pin(22).state) == (0, 1, 0)
    led(ev.StateChanged(turn=0, stream_time=0.0, state="idle"))
    assert (factory.pin(20).state, factory.pin(21).state, factory.pin(22).state) == (0, 0, 0)
    led.close()


def test_a_control_pin_in_use_is_a_clear_error(tmp_path, factory):
    config = ActionsConfig(button=ButtonConfig(pin=17))
    actions, _ = make(tmp_path, factory, config)

    async def main():
        async with actions:
            with pytest.raises(ConfigError, match="GPIO pin 17 for the button is already in use"):
                actions.attach(ControlsSpy())

    asyncio.run(main())


def test_doctor_names_the_chips_and_fails_only_when_pins_are_configured(tmp_path):
    from appliance.config import AppConfig
    from appliance.doctor import _gpio_check
    from appliance.sections.devices import DeviceList

    plain = AppConfig()
    wired = AppConfig(devices=DeviceList(DEVICES))
    check = _gpio_check(plain, tmp_path, here=False)
    assert check.status == "ok" and "no GPIO chips" in check.detail
    check = _gpio_check(wired, tmp_path, here=False)
    assert check.status == "fail" and "2 pin(s) configured" in check.detail
    assert 'pin_factory = "mock"' in check.fix
    (tmp_path / "dev").mkdir()
    for n in (10, 0, 4):
        (tmp_path / "dev" / f"gpiochip{n}").touch()
    from appliance.pins import gpio_chips

    assert [p.name for p in gpio_chips(tmp_path)] == ["gpiochip0", "gpiochip4", "gpiochip10"]
    check = _gpio_check(wired, tmp_path, here=False)
    assert check.status == "ok" and "3 GPIO chip(s)" in check.detail
    mock = AppConfig(actions=ActionsConfig(pin_factory="mock"), devices=DeviceList(DEVICES))
    assert "nothing is switched" in _gpio_check(mock, tmp_path, here=True).detail


def test_the_pin_factory_is_loaded_as_the_appliance_would_and_closed_again():
    from pathlib import Path

    from appliance.pins import probe_pin_factory

    name, what = probe_pin_factory("mock")
    assert name == "mock" and "Raspberry Pi" in what  # gpiozero's mock Pi
    if not Path("/proc/device-tree/model").exists():  # not a Pi: each real one says why
        name, why = probe_pin_factory("")
        assert name == "" and why.startswith("lgpio: ") and "rpigpio: " in why


class _FakeLgpio:
    """lgpio's calls on one open chip, recorded: the kernel's side is the boot test's
    (a simulated USB GPIO bridge under QEMU)."""

    def __init__(self, lines: int = 8) -> None:
        self.lines = lines
        self.levels: dict[int, int] = {}
        self.outputs: set[int] = set()
        self.closed = False

    def install(self, monkeypatch) -> None:
        import lgpio

        for name in (
            "gpiochip_open",
            "gpiochip_close",
            "gpio_get_chip_info",
            "gpio_claim_input",
            "gpio_claim_output",
            "gpio_write",
            "gpio_read",
            "gpio_get_mode",
            "gpio_free",
        ):
            monkeypatch.setattr(lgpio, name, getattr(self, name))  # fmt: skip

    def gpiochip_open(self, chip: int) -> int:
        if chip != 0:
            raise RuntimeError("can not open gpiochip")
        return 7

    def gpiochip_close(self, handle: int) -> None:
        self.closed = True

    def gpio_get_chip_info(self, handle: int) -> tuple[int, int, str, str]:
        return 0, self.lines, "gpiochip0", "cp2112_gpio"

    def gpio_claim_input(self, handle: int, line: int, flags: int = 0) -> int:
        self.outputs.discard(line)
        return 0

    def gpio_claim_output(self, handle: int, line: int, level: int = 0, flags: int = 0) -> int:
        self.outputs.add(line)
        self.levels[line] = level
        return 0

    def gpio_write(self, handle: int, line: int, level: int) -> int:
        assert line in self.outputs
        self.levels[line] = int(level)
        return 0

    def gpio_read(self, handle: int, line: int) -> int:
        return self.levels.get(line, 0)

    def gpio_get_mode(self, handle: int, line: int) -> int:
        return 2 if line in self.outputs else 0  # lgpio's GPIO_IS_OUT

    def gpio_free(self, handle: int, line: int) -> int:
        return 0


LINE_DEVICES = [
    DeviceConfig("porch light", "light", (), "outside", GpioOutput(3)),
    DeviceConfig("gate", "relay", (), "", GpioOutput(5, active_high=False)),
]


def test_off_a_raspberry_pi_the_pins_are_the_chips_lines(tmp_path, monkeypatch):
    """On a board that is not a Pi (a Rockchip board, a USB bridge) gpiozero's factories
    find no header; the chip's factory drives line N for pin N, through lgpio."""
    import appliance.gpiochip
    import appliance.pins
    from appliance.pins import make_pin_factory, probe_pin_factory

    chip = _FakeLgpio()
    chip.install(monkeypatch)
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(appliance.pins, "gpio_chips", lambda: [tmp_path / "gpiochip0"])
    monkeypatch.setattr(appliance.gpiochip, "on_a_raspberry_pi", lambda: False)
    factory = make_pin_factory("", 0)
    assert factory.describe() == "/dev/gpiochip0 (cp2112_gpio, 8 lines)"
    actions, _ = make(tmp_path, factory, devices=LINE_DEVICES)

    async def main():
        async with actions:
            reply = (await actions.intents.handle("Turn on the porch light.", 1)).reply
            return reply, set(chip.outputs), dict(chip.levels)

    try:
        reply, outputs, levels = asyncio.run(main())
    finally:
        factory.close()
    assert reply == "The porch light is on."
    assert outputs == {3, 5} and levels == {3: 1, 5: 1}  # the gate: active low, off
    assert chip.outputs == set() and chip.closed  # closed: the lines handed back as inputs
    assert probe_pin_factory("", 0) == (
        "gpiochip", "/dev/gpiochip0 (cp2112_gpio, 8 lines), on a board that is not a Raspberry Pi"
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"/dev/gpiochip2 cannot be used: .*actions.gpio_chip"):
        make_pin_factory("gpiochip", 2)
    # On a Pi, or with $GPIOZERO_PIN_FACTORY, or with no chip: gpiozero's own choice.
    monkeypatch.setattr(appliance.gpiochip, "on_a_raspberry_pi", lambda: True)
    assert make_pin_factory("", 0) is None
    monkeypatch.setattr(appliance.gpiochip, "on_a_raspberry_pi", lambda: False)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    assert make_pin_factory("", 0) is None
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY")
    monkeypatch.setattr(appliance.pins, "gpio_chips", lambda: [])
    assert make_pin_factory("", 0) is None


def test_a_chip_that_cannot_be_opened_leaves_each_gpio_device_saying_why(tmp_path, monkeypatch):
    _FakeLgpio().install(monkeypatch)
    config = ActionsConfig(pin_factory="gpiochip", gpio_chip=3)
    actions, _ = make(tmp_path, None, config, devices=LINE_DEVICES)

    async def main():
        async with actions:
            return (await actions.intents.handle("Turn on the porch light.", 1)).reply

    reply = asyncio.run(main())
    assert "I can't use the porch light: GPIO chip /dev/gpiochip3 cannot be used" in reply
