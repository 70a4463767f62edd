"""GPIO on boards that are not Raspberry Pis (Rockchip boards, USB GPIO bridges): the
lines of one /dev/gpiochipN, driven through lgpio with gpiozero's own lgpio pins.

gpiozero's factories look the pins up on a Raspberry Pi's header, found from the Pi's
revision code, so on any other board none of them loads. This factory describes the chip
instead: pin N is line N of the chip (`actions.gpio_chip`), also named "GPION". Everything
else (claiming, PWM in software, edge callbacks, pin reservations) is gpiozero's and
lgpio's, exactly as on a Pi.
"""

from __future__ import annotations

from typing import Any

import lgpio
from gpiozero.exc import PinUnknownPi
from gpiozero.pins import BoardInfo, HeaderInfo, PinInfo
from gpiozero.pins.lgpio import LGPIOFactory, LGPIOPin
from gpiozero.pins.local import LocalPiFactory, get_pi_revision


def on_a_raspberry_pi() -> bool:
    """This machine reports a Raspberry Pi revision code (what gpiozero's own factories
    need to find their pins)."""
    try:
        get_pi_revision()
    except (PinUnknownPi, OSError, ValueError):
        return False
    return True


class ChipFactory(LGPIOFactory):
    """Pins are the line numbers of one gpiochip. Raises OSError-like lgpio errors when the
    chip cannot be opened (absent, or not this user's)."""

    def __init__(self, chip: int = 0) -> None:
        LocalPiFactory.__init__(self)  # not LGPIOFactory's: it asks for a Pi's revision
        self._handle = lgpio.gpiochip_open(chip)
        self._chip = chip
        self.pin_class = LGPIOPin
        try:
            _, self.lines, self.name, self.label = lgpio.gpio_get_chip_info(self._handle)
        except BaseException:
            lgpio.gpiochip_close(self._handle)
            raise

    def _get_revision(self) -> int:
        raise PinUnknownPi(f"/dev/gpiochip{self._chip} is not a Raspberry Pi header")

    def _get_board_info(self) -> Any:
        if self._info is None:
            self._info = _board(self._chip, self.lines, self.label)
        return self._info

    def describe(self) -> str:
        return f"/dev/gpiochip{self._chip} ({self.label or self.name}, {self.lines} lines)"


def _board(chip: int, lines: int, label: str) -> BoardInfo:
    pins = {
        line: PinInfo(
            number=line,
            name=f"GPIO{line}",
            names=frozenset({line, str(line), f"GPIO{line}"}),
            pull="",
            row=line + 1,
            col=1,
            interfaces=frozenset({"gpio"}),
        )  # fmt: skip
        for line in range(lines)
    }
    header = HeaderInfo(name=f"gpiochip{chip}", rows=lines, columns=1, pins=pins)
    return BoardInfo(
        revision="", model=f"gpiochip{chip} {label}".strip(), pcb_revision="", released="",
        soc="", manufacturer="", memory=None, storage="", usb=0, usb3=0, ethernet=0,
        eth_speed=0, wifi=False, bluetooth=False, csi=0, dsi=0,
        headers={header.name: header}, board="",
    )  # fmt: skip
