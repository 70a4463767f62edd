"""The JSON API's request and response models (pydantic): what /openapi.json describes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from appliance.sections.devices import DEVICE_KINDS
from appliance.web.settings import FIELDS


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    text: str = Field(
        min_length=1, max_length=2000, pattern=r"[^\s\x1c-\x1f]",
        description="The request, as typed (not only spaces).",
    )  # fmt: skip
    audio: bool = Field(False, description="Also return the reply as a WAV (base64).")


class TurnOut(BaseModel):
    turn: int
    outcome: str
    transcript: str
    reply: str
    timings: dict[str, float]
    errors: list[str]


class AskResponse(TurnOut):
    audio_wav_base64: str | None = None


class ListenResponse(BaseModel):
    turns: list[TurnOut]
    message: str


class DevicesInfo(BaseModel):
    kinds: list[str]
    gpio_pins: list[int] = Field(description="The lowest and highest BCM pin accepted.")
    reserved_pins: dict[str, str] = Field(
        description="Pins the button, mute switch or status light hold → which."
    )
    applies: str = Field(description="When a change to the devices takes effect.")


class ConfigOut(BaseModel):
    version: str
    settings: dict[str, Any] = Field(
        description="The configuration in effect, as TOML tables; secrets left out."
    )
    editable: list[dict[str, Any]]
    devices: DevicesInfo


class GpioIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: int = Field(description="BCM pin number, 0–27, not used by another device or the "
                     "button, mute switch or status light.")  # fmt: skip
    pwm: bool = False
    active_high: bool = True


class MqttDeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command_topic: str = Field(description="Exact topic (no + or #) for ON/OFF commands.")
    state_topic: str = ""
    payload_on: str = "ON"
    payload_off: str = "OFF"
    brightness_topic: str = ""
    brightness_scale: int | None = None


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Unique, at most 60 characters.")
    kind: str = Field("light", description="One of: " + ", ".join(DEVICE_KINDS))
    aliases: list[str] = Field(default_factory=list, description="Other names (at most 8).")
    room: str = ""
    gpio: GpioIn | None = None
    mqtt: MqttDeviceIn | None = None

    def table(self) -> dict[str, Any]:
        table = self.model_dump(exclude_none=True)
        if "mqtt" in table:  # empty optional topics are left out, as in a hand-written file
            table["mqtt"] = {k: v for k, v in table["mqtt"].items() if v != ""}
        return table


SettingName = Literal[tuple(f.name for f in FIELDS)]  # type: ignore[valid-type]


class ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(max_length=64, description="The version (ETag) from GET /api/config.")
    settings: dict[SettingName, str | int | float | bool] = Field(  # type: ignore[valid-type]
        default_factory=dict,
        description='"section.key" → value, e.g. {"llm.system_prompt": "Be brief."}; ranges '
        "and model names are checked against the configuration's rules (422 per field). "
        'A secret (mqtt.password) is never returned by GET; "" keeps the stored one.',
    )
    devices: list[DeviceIn] | None = Field(
        None,
        description="The whole [[devices]] list, replacing the saved one (omit to keep it). "
        "Errors are keyed devices[i].field. Devices take effect at the next start.",
    )


class ConfigSaved(BaseModel):
    version: str
    applied: list[str]
    restart: list[str]


class MuteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    muted: bool


class ControlOut(BaseModel):
    muted: bool
    listening: bool = False


class VisionCapture(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    capture: Literal[True] = Field(description="Capture a frame from the camera now.")
    question: str = Field(
        "", max_length=1000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$",
        description='What to look for: "read this", "is anyone at the door?"; "" = read.',
    )  # fmt: skip
    kind: Literal["read", "describe"] | None = Field(
        None, description="read or describe; default: from the question"
    )
    speak: bool = Field(False, description="The appliance also says the answer.")


class VisionOut(BaseModel):
    kind: str = Field(description="read or describe")
    text: str = Field(description="The answer, as it would be spoken.")
    backend: str = Field(description="rapidocr, the vision model, or none")
    lines: list[str] = Field(description="The text lines OCR read, top to bottom.")
    problem: str = Field(description='"" when it looked; else why not (see docs/vision.md)')
    seconds: float
    capture_seconds: float


class Problem(BaseModel):
    detail: Any


PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid session or bearer token"},
    403: {"model": Problem, "description": "CSRF token missing or wrong"},
}
