"""The settings the page edits: which fields, how a form value becomes a typed value,
validation against the whole configuration, and saving with a version check.

A save is refused as a whole when any field is wrong (each wrong field gets its own
message) or when the file changed since the page was opened (another tab, the CLI): the
file on disk is then left exactly as it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.config import AppConfig, atomic_write, build_config, to_toml
from appliance.errors import ConfigError

MAX_TEXT = 4000
"""Longest system prompt (characters)."""
MAX_STRING = 200


class ConfigConflict(ConfigError):
    code = "config_conflict"


@dataclass(frozen=True)
class SettingField:
    section: str
    key: str
    label: str
    kind: str
    """float, int, bool, str, text (long string) or choice."""
    help: str = ""
    live: str = ""
    """What reloads when it changes; empty = a restart is needed."""
    role: str = ""
    """For model choices: the catalog role whose models are offered."""
    pattern: str = ""
    """For strings: a regular expression the whole value must match."""

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


FIELDS: tuple[SettingField, ...] = (
    SettingField("web", "device_name", "Device name", "str",
                 "How it appears on the network: http://NAME.local (empty = the hostname)",
                 live="mDNS re-announces the new name"),
    SettingField("wake", "model", "Wake word", "choice", role="wake"),
    SettingField("wake", "threshold", "Wake word sensitivity (0–1, higher = fewer false wakes)",
                 "float", live="wake word detector, at once"),
    SettingField("listen", "silence_seconds", "Silence that ends a request (seconds)", "float"),
    SettingField("conversation", "follow_up_seconds",
                 "Listen for a follow-up without the wake word (seconds, 0 = off)", "float",
                 live="conversation, from the next reply"),
    SettingField("tts", "voice", "Voice", "choice", role="tts"),
    SettingField("tts", "length_scale", "Speaking rate (above 1 = slower)", "float",
                 live="voice, from the next sentence"),
    SettingField("stt", "language", "Language (as Whisper names it, e.g. en)", "str",
                 pattern=r"[a-z]{2,3}|auto"),
    SettingField("stt", "model", "Speech-to-text model", "choice", role="stt"),
    SettingField("llm", "model", "Language model", "choice", role="llm"),
    SettingField("llm", "system_prompt", "System prompt", "text",
                 live="language model, from the next request"),
    SettingField("audio", "input_device", "Microphone (index or part of the name)", "str",
                 pattern=r"[^\x00-\x1f/\\]*"),
    SettingField("audio", "output_device", "Speaker (index or part of the name)", "str",
                 pattern=r"[^\x00-\x1f/\\]*"),
    SettingField("feedback", "earcons", "Sounds on wake and end of listening", "bool",
                 live="earcons, at once"),
    SettingField("web", "keep_transcripts",
                 "Privacy: keep what was said in the recent turns (memory only)", "bool",
                 live="status page, at once"),
    # ---- DEVICES / MQTT: the lead wires `[[devices]]` and `[mqtt]` here after merging the
    # actions work. Add their SettingFields (or a section renderer) in this place; the page
    # and the API pick up every entry of FIELDS.
)  # fmt: skip
FIELDS_BY_NAME = {f.name: f for f in FIELDS}


def model_choices(config: AppConfig, role: str) -> list[str]:
    """Catalog names offered for a role (built-in and imported)."""
    from appliance.models.catalog import ModelStore

    try:
        store = ModelStore(config.models_path())
        return sorted(e.name for e in store.catalog.values() if e.role == role)
    except Exception:
        return []


def current_value(config: AppConfig, item: SettingField) -> Any:
    return getattr(getattr(config, item.section), item.key)


def coerce(item: SettingField, value: Any, choices: Callable[[str], list[str]]) -> Any:
    """A form string or a JSON value → the field's type; ValueError says what is wrong."""
    if item.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("on", "true", "1", "yes"):
            return True
        if isinstance(value, str) and value.lower() in ("", "off", "false", "0", "no"):
            return False
        raise ValueError("must be on or off")
    if item.kind in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("must be a number")
        try:
            number = float(value) if item.kind == "float" else int(str(value).strip())
        except (ValueError, OverflowError):
            raise ValueError(f"must be a number, not {str(value)[:40]!r}") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if not isinstance(value, str):
        raise ValueError("must be text")
    limit = MAX_TEXT if item.kind == "text" else MAX_STRING
    if len(value) > limit:
        raise ValueError(f"is too long ({len(value)} characters; at most {limit})")
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    if item.kind == "choice":
        allowed = choices(item.role)
        if value not in allowed:
            raise ValueError(
                f"{value[:60]!r} is not a known {item.role} model; choose one of: "
                + (", ".join(allowed) or "(none prepared)")
            )
    if item.pattern and not re.fullmatch(item.pattern, value):
        raise ValueError(f"{value[:60]!r} is not allowed here")
    return value.strip() if item.kind == "str" else value


def version_of(data: bytes | None) -> str:
    """The ETag of a config file's content ("none" when there is no file)."""
    return "none" if data is None else hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class SaveResult:
    config: AppConfig
    version: str
    changed: tuple[str, ...]
    """Names of the settings whose value changed."""


class ConfigStore:
    """The config file the page edits; one save at a time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _bytes(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def version(self) -> str:
        return version_of(self._bytes())

    def _base(self, data: bytes | None) -> tuple[dict[str, Any], bool]:
        """The settings a save starts from, and whether the file on disk is good (a
        corrupt one is replaced without becoming the backup)."""
        if data is None:
            return {}, True
        try:
            raw = tomllib.loads(data.decode("utf-8"))
            build_config(raw)
            return raw, True
        except (UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError):
            backup = self.path.with_name(self.path.name + ".bak")
            try:
                raw = tomllib.loads(backup.read_text("utf-8"))
                build_config(raw)
                return raw, False
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError):
                return {}, False

    def validate(
        self, current: AppConfig, values: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Typed values and per-field errors for raw values keyed "section.key"."""
        typed: dict[str, Any] = {}
        errors: dict[str, str] = {}
        cache: dict[str, list[str]] = {}

        def choices(role: str) -> list[str]:
            if role not in cache:
                cache[role] = model_choices(current, role)
            return cache[role]

        for name, value in values.items():
            item = FIELDS_BY_NAME.get(name)
            if item is None:
                errors[name] = "is not a setting that can be changed here"
                continue
            try:
                typed[name] = coerce(item, value, choices)
            except ValueError as err:
                errors[name] = f"{item.label}: {err}"
        # Ranges and rules live in the config dataclasses: check each value there alone,
        # so every wrong field gets its own message.
        base = config_to_raw(current)
        for name, value in typed.items():
            section, key = name.split(".")
            trial = {**base, section: {**base.get(section, {}), key: value}}
            try:
                build_config(trial)
            except ConfigError as err:
                errors[name] = f"{FIELDS_BY_NAME[name].label}: {err}"
        return typed, errors

    def save(self, current: AppConfig, typed: dict[str, Any], version: str) -> SaveResult:
        """Write the changed settings if the file is still at `version`."""
        with self._lock:
            data = self._bytes()
            if version != version_of(data):
                raise ConfigConflict(
                    "The settings were changed elsewhere (another tab or the command line) "
                    "since this page was loaded. Nothing was saved: reload the page to see "
                    "the current settings, then make your change again."
                )
            raw, disk_is_good = self._base(data)
            changed = []
            for name, value in typed.items():
                section, key = name.split(".")
                raw.setdefault(section, {})[key] = value
                if current_value(current, FIELDS_BY_NAME[name]) != value:
                    changed.append(name)
            config = build_config(raw)
            text = to_toml(raw)
            atomic_write(self.path, text, backup=disk_is_good)
            return SaveResult(config, version_of(text.encode()), tuple(changed))


def config_to_raw(config: AppConfig) -> dict[str, Any]:
    """The whole effective configuration as TOML-ready tables (TOML has no None: an unset
    optional setting is left out, as it would be in the file)."""
    raw = _toml_ready(dataclasses.asdict(config))
    raw["devices"] = [device.to_table() for device in config.devices]
    return raw


def _toml_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_toml_ready(v) for v in value]
    return value
