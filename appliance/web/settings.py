"""The settings the page edits: which fields, how a form value becomes a typed value,
validation against the whole configuration, and saving with a version check.

A save is refused as a whole when any field is wrong (each wrong field gets its own
message) or when the file changed since the page was opened (another tab, the CLI): the
file on disk is then left exactly as it was.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
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
from appliance.web.devices import check_devices

MAX_TEXT = 4000
"""Longest system prompt (characters)."""
MAX_STRING = 200
MAX_PATH = 1024
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
JOINT_SECTIONS = ("mqtt",)
"""Sections whose settings depend on each other (TLS and its CA file; a password and its
user name): their submitted values are checked together."""


class ConfigConflict(ConfigError):
    code = "config_conflict"


@dataclass(frozen=True)
class SettingField:
    section: str
    key: str
    label: str
    kind: str
    """float, int, bool, str, text (long string), choice, host (a host name or an IP
    address), path (an absolute file path) or secret (write-only: never shown or returned;
    an empty value keeps the stored one)."""
    help: str = ""
    live: str = ""
    """What reloads when it changes; empty = a restart is needed."""
    role: str = ""
    """For model choices: the catalog role whose models are offered."""
    pattern: str = ""
    """For strings: a regular expression the whole value must match."""
    bounds: tuple[float, float] | None = None
    """For numbers: the allowed range, checked even where the config's own rule is not
    (an MQTT port while the broker host is empty)."""
    group: str = ""
    """A heading the page shows above the field and those after it with the same group."""

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
    SettingField("listen", "end_of_turn",
                 "End of a request: smart (the end-of-turn model and the words so far, at "
                 "each pause) or silence (a fixed wait)", "str", pattern=r"smart|silence"),
    SettingField("listen", "max_pause_seconds",
                 "Smart: the longest pause inside a request (seconds)", "float"),
    SettingField("listen", "silence_seconds",
                 "Silence that ends a request without the smart end (seconds)", "float"),
    SettingField("conversation", "follow_up",
                 "Listen for a follow-up without the wake word: asked (after a question), "
                 "always or never", "str", pattern=r"asked|always|never",
                 live="conversation, from the next reply"),
    SettingField("conversation", "follow_up_seconds",
                 "How long a follow-up window stays open (seconds)", "float",
                 live="conversation, from the next reply"),
    SettingField("conversation", "language",
                 "Language commands are understood in (en, de, fr, …)", "str",
                 pattern=r"[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?"),
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
    # The MQTT broker (`[mqtt]`). The link is started with the appliance: a restart applies
    # these. The devices (`[[devices]]`) are a list, edited in their own part of the page
    # (appliance/web/devices.py) and carried by PUT /api/config's "devices".
    SettingField("mqtt", "host", "MQTT broker host", "host",
                 "A host name or an IP address; empty = MQTT off", group="MQTT broker"),
    SettingField("mqtt", "port", "MQTT broker port", "int", "0 = 1883, or 8883 with TLS",
                 bounds=(0, 65535), group="MQTT broker"),
    SettingField("mqtt", "username", "MQTT user name", "str", "Empty = anonymous",
                 pattern=r"[^\x00-\x1f\x7f]*", group="MQTT broker"),
    SettingField("mqtt", "password", "MQTT password", "secret",
                 "Never shown again; leave it empty to keep the stored one (an empty user "
                 "name drops it)", group="MQTT broker"),
    SettingField("mqtt", "tls", "MQTT over TLS", "bool", group="MQTT broker"),
    SettingField("mqtt", "ca_file", "MQTT CA certificate file", "path",
                 "The PEM file of the CA that signed the broker's certificate, e.g. "
                 "/etc/appliance/broker-ca.pem; empty = the system's CAs", group="MQTT broker"),
    SettingField("mqtt", "discovery", "Home Assistant discovery", "bool",
                 "Announce the appliance to Home Assistant over MQTT", group="MQTT broker"),
    # Home Assistant's native API (`[satellite]`, docs/home-assistant.md): a restart applies.
    SettingField("satellite", "enabled", "Serve Home Assistant's native API", "bool",
                 "Home Assistant then finds the appliance and adds it as a voice satellite",
                 group="Home Assistant satellite"),
    SettingField("satellite", "mode", "Who answers: local (this appliance) or home_assistant "
                 "(Assist, with this appliance answering when it cannot)", "str",
                 pattern=r"local|home_assistant", group="Home Assistant satellite"),
    SettingField("satellite", "encryption_key", "Encryption key", "secret",
                 "Your own key: 32 bytes in base64, as `appliance satellite key` prints; "
                 "Home Assistant asks for the same key. Never shown again; empty keeps the "
                 "stored one. None set: the key made on first start, shown on the status "
                 "page, is used", group="Home Assistant satellite"),
    SettingField("satellite", "plaintext", "No encryption (testing only)", "bool",
                 "Anyone on the network can then control the appliance and, in "
                 "home_assistant mode, hear what it hears after the wake word",
                 group="Home Assistant satellite"),
    # The camera (`[vision]`, docs/vision.md): a restart applies.
    SettingField("vision", "camera", "Camera", "str",
                 "auto: a USB camera plugged in at power-on (or a Pi camera); v4l2: a USB "
                 "camera, vision.device picks which; none: vision off; file: an image "
                 "folder (vision.path)", pattern=r"none|auto|picamera2|v4l2|file",
                 group="Camera"),
    # Several rooms, one answer (`[rooms]`, docs/bigger-box.md): a restart applies.
    SettingField("rooms", "enabled", "Agree with the other rooms' boxes who answers", "bool",
                 "Only the box that heard the wake word best answers; turn it on on every "
                 "box", group="Rooms"),
    SettingField("rooms", "name", "This box's name among them", "str",
                 "Its room, e.g. kitchen; empty = the device name. Each box needs its own",
                 pattern=r"[^\x00-\x1f\x7f]{0,40}", group="Rooms"),
    SettingField("rooms", "via", "How the boxes reach each other", "str",
                 "multicast (this network) or mqtt (through the broker set above, for "
                 "networks that drop multicast); the same on every box",
                 pattern=r"multicast|mqtt", group="Rooms"),
    # A bigger box's engines in front of this board's (docs/bigger-box.md): a restart applies.
    SettingField("stt", "remote", "Speech-to-text service (Wyoming)", "str",
                 "e.g. tcp://192.168.1.20:10300 (wyoming-faster-whisper, or another "
                 "appliance's serve-wyoming); this board's whisper when it cannot. Empty = "
                 "this board's only", pattern=r"(tcp://[^\s]+)?", group="Bigger box"),
    SettingField("tts", "remote", "Voice service (Wyoming)", "str",
                 "e.g. tcp://192.168.1.20:10200 (wyoming-piper); this board's Piper when it "
                 "cannot. Empty = this board's only", pattern=r"(tcp://[^\s]+)?",
                 group="Bigger box"),
    SettingField("llm", "remote", "Language model server (OpenAI-compatible)", "str",
                 "e.g. http://192.168.1.20:8080/v1 (llama-server, llama_cpp.server, "
                 "Ollama); this board's model answers when it cannot. Empty = this board's "
                 "only", pattern=r"(https?://[^\s]+)?", group="Bigger box"),
    SettingField("llm", "remote_model", "Model name on that server", "str",
                 "Ollama needs one (e.g. llama3.2:3b); llama.cpp ignores it",
                 pattern=r"[^\x00-\x1f\x7f]*", group="Bigger box"),
    SettingField("llm", "remote_api_key", "API key for that server", "secret",
                 "If it wants one. Never shown again; empty keeps the stored one",
                 group="Bigger box"),
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
        if item.bounds and not item.bounds[0] <= number <= item.bounds[1]:
            low, high = (f"{b:g}" for b in item.bounds)
            raise ValueError(f"must be {low}–{high}, not {str(value)[:40]}")
        return number
    if not isinstance(value, str):
        raise ValueError("must be text")
    limit = {"text": MAX_TEXT, "path": MAX_PATH}.get(item.kind, MAX_STRING)
    if len(value) > limit:
        raise ValueError(f"is too long ({len(value)} characters; at most {limit})")
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid text (it holds a lone surrogate)") from None
    if item.kind == "secret":
        if _CONTROL.search(value):
            raise ValueError("must not contain control characters (new lines, tabs, …)")
        return value
    if item.kind == "choice":
        allowed = choices(item.role)
        if value not in allowed:
            raise ValueError(
                f"{value[:60]!r} is not a known {item.role} model; choose one of: "
                + (", ".join(allowed) or "(none prepared)")
            )
    if item.kind == "host":
        return _host(value.strip())
    if item.kind == "path":
        return _path(value.strip())
    if item.pattern and not re.fullmatch(item.pattern, value):
        raise ValueError(f"{value[:60]!r} is not allowed here")
    return value.strip() if item.kind == "str" else value


def _host(value: str) -> str:
    """A host name or an IP address (v4 or v6), or empty."""
    if not value:
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", value) or not _HOST_NAME.fullmatch(value):
        raise ValueError(
            f"{value[:60]!r} is not a host name or an IP address (letters, digits, - and . "
            "only, e.g. broker.local or 192.168.1.10)"
        )
    return value


def _path(value: str) -> str:
    """An absolute file path without control characters or `..`, or empty."""
    if not value:
        return value
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    if not value.startswith("/"):
        raise ValueError(f"{value[:60]!r} must be an absolute path, e.g. /etc/ssl/broker-ca.pem")
    if ".." in value.split("/"):
        raise ValueError(f"{value[:60]!r} must not contain .. (name the file directly)")
    if value.endswith("/"):
        raise ValueError(f"{value[:60]!r} names a folder, not a file")
    return value


def version_of(data: bytes | None) -> str:
    """The ETag of a config file's content ("none" when there is no file)."""
    return "none" if data is None else hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class SaveResult:
    config: AppConfig
    version: str
    changed: tuple[str, ...]
    """Names of the settings whose value changed ("devices" when the devices did)."""


DEVICES = "devices"
"""The key of the device list in validated values (beside "section.key" settings)."""


def merge(raw: dict[str, Any], typed: dict[str, Any]) -> dict[str, Any]:
    """`raw` (TOML tables) with validated values applied; `raw` itself is not changed."""
    out = {name: dict(table) if isinstance(table, dict) else table for name, table in raw.items()}
    for name, value in typed.items():
        if name == DEVICES:
            out[DEVICES] = [dict(table) for table in value]
            continue
        section, key = name.split(".")
        out.setdefault(section, {})[key] = value
    mqtt = out.get("mqtt", {})
    if typed.get("mqtt.username") == "" and "mqtt.password" not in typed:
        mqtt.pop("password", None)  # anonymous: a stored password goes with the user name
    return out


def _mentioned(message: str, names: list[str]) -> list[str]:
    return [name for name in names if re.search(rf"\b{re.escape(name)}\b", message)]


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
        self, current: AppConfig, values: dict[str, Any], devices: list[Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Typed values and per-field errors for raw values keyed "section.key", and for
        a new device list (the whole list; its errors keyed "devices[i].field")."""
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
            if item.kind == "secret" and value == "":
                continue  # write-only: empty keeps the stored one
            try:
                typed[name] = coerce(item, value, choices)
            except ValueError as err:
                errors[name] = f"{item.label}: {err}"
        # Ranges and rules live in the config dataclasses: check each value there alone,
        # so every wrong field gets its own message.
        base = config_to_raw(current)
        for name, value in typed.items():
            section, key = name.split(".")
            if section in JOINT_SECTIONS:
                continue
            try:
                build_config(merge(base, {name: value}))
            except ConfigError as err:
                errors[name] = f"{FIELDS_BY_NAME[name].label}: {err}"
        for section in JOINT_SECTIONS:
            self._check_joint(base, typed, errors, section)
        broker = merge(base, typed).get("mqtt", {}).get("host", "")
        if devices is not None:
            cleaned, problems = check_devices(devices, current.actions, broker=bool(broker))
            for (index, key), message in problems.items():
                errors[f"{DEVICES}[{index}].{key}"] = message
            if not problems:
                typed[DEVICES] = cleaned
        if not broker and "mqtt.host" in typed and "mqtt.host" not in errors:
            users = [d.get("name", "?") for d in typed.get(DEVICES, config_to_raw(current)[DEVICES])
                     if "mqtt" in d]  # fmt: skip
            if users:
                errors["mqtt.host"] = (
                    f"{FIELDS_BY_NAME['mqtt.host'].label}: the devices "
                    f"{', '.join(users)} use MQTT; remove them before turning MQTT off"
                )
        if not errors and typed:
            try:  # everything together, as it will be saved
                build_config(merge(base, typed))
            except ConfigError as err:
                errors[next(iter(typed))] = str(err)
        return typed, errors

    @staticmethod
    def _check_joint(
        base: dict[str, Any], typed: dict[str, Any], errors: dict[str, str], section: str
    ) -> None:
        """The submitted values of one section together; a failing rule is blamed on the
        fields its message names, which are then left out to find the next one."""
        names = [n for n in typed if n.startswith(section + ".") and n not in errors]
        while names:
            try:
                build_config(merge(base, {n: typed[n] for n in names}))
                return
            except ConfigError as err:
                blamed = _mentioned(str(err), names) or names[-1:]
                for name in blamed:
                    errors[name] = f"{FIELDS_BY_NAME[name].label}: {err}"
                names = [n for n in names if n not in blamed]

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
            raw = merge(raw, typed)
            changed = []
            for name, value in typed.items():
                if name == DEVICES:
                    if value != config_to_raw(current)[DEVICES]:
                        changed.append(name)
                elif current_value(current, FIELDS_BY_NAME[name]) != value:
                    changed.append(name)
            if typed.get("mqtt.username") == "" and current.mqtt.password:
                changed.append("mqtt.password")
            config = build_config(raw)
            text = to_toml(raw)
            atomic_write(self.path, text, backup=disk_is_good)
            return SaveResult(config, version_of(text.encode()), tuple(dict.fromkeys(changed)))


def config_to_raw(config: AppConfig) -> dict[str, Any]:
    """The whole effective configuration as TOML-ready tables (TOML has no None: an unset
    optional setting is left out, as it would be in the file)."""
    raw = _toml_ready(dataclasses.asdict(config))
    raw["devices"] = [device.to_table() for device in config.devices]
    return raw


def public_config(config: AppConfig) -> dict[str, Any]:
    """`config_to_raw` without the secrets (for GET /api/config and the page)."""
    raw = config_to_raw(config)
    for item in FIELDS:
        if item.kind == "secret":
            raw.get(item.section, {}).pop(item.key, None)
    return raw


def _toml_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_toml_ready(v) for v in value]
    return value
