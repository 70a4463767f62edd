"""What Home Assistant sets on the appliance, kept across restarts (an ESPHome device
restores its entities' values the same way): the speaker's volume and mute, the status
light on or off, and the wake word's sensitivity.

The sensitivity is the wake word's threshold, which the config file and the config
page set too. The latest change wins: Home Assistant's choice is kept with the
threshold it replaced, and applies at start only while the config still has that one."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from appliance.config import data_dir

_LOGGER = logging.getLogger(__name__)
SETTINGS_FILE = "satellite.json"


@dataclass
class Remembered:
    volume: float | None = None
    media_muted: bool | None = None
    status_light: bool | None = None
    wake_threshold: float | None = None
    """Home Assistant's sensitivity, as a threshold…"""
    wake_threshold_over: float | None = None
    """…and the config's threshold when it was chosen."""


class RememberedFile:
    """`<data>/satellite.json`, written whole and renamed into place: a power cut leaves
    the old settings or the new."""

    def __init__(self, data: Path | None = None) -> None:
        self.path = (data or data_dir()) / SETTINGS_FILE

    def load(self) -> Remembered:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Remembered()
        except (OSError, ValueError) as err:
            _LOGGER.warning("%s cannot be read (%s): Home Assistant's settings start afresh",
                            self.path, err)  # fmt: skip
            return Remembered()
        if not isinstance(raw, dict):
            return Remembered()
        known = {f.name for f in fields(Remembered)}
        values = {k: v for k, v in raw.items() if k in known and isinstance(v, int | float)}
        return Remembered(**values)

    def save(self, remembered: Remembered) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(self.path.name + ".new")
            with open(partial, "w", encoding="utf-8") as out:
                json.dump(asdict(remembered), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, self.path)
        except OSError as err:  # the setting holds until the restart
            _LOGGER.warning("Home Assistant's settings cannot be kept in %s (%s); they hold "
                            "until the appliance restarts", self.path, err)  # fmt: skip
