"""Settings as frozen dataclasses, read from a TOML file and validated at the edge.

Every field has a default, so an empty (or missing) file is a working configuration.
Unknown keys and wrong types are reported with the file, the section and the key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError
from appliance.sections.conversation import ConversationConfig
from appliance.sections.devices import ActionsConfig, DeviceList
from appliance.sections.llm import LlmConfig
from appliance.sections.mqtt import MqttConfig
from appliance.sections.remote import check_remote_timing, check_wyoming_url
from appliance.sections.rooms import RoomsConfig
from appliance.sections.satellite import SatelliteConfig
from appliance.sections.vision import VisionConfig
from appliance.sections.web import WebConfig


def cpu_count() -> int:
    """Cores this process may run on (respects taskset and cgroup cpusets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(configured: int) -> int:
    """0 means "what the board has"."""
    return configured if configured > 0 else cpu_count()


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class WakeConfig:
    model: str = "hey_jarvis"
    """Catalog name of the wake-word model."""
    threshold: float = 0.5
    """Score (0–1) above which the wake word counts as heard; higher means fewer false wakes."""

    def __post_init__(self) -> None:
        _check(0.0 < self.threshold < 1.0, "wake.threshold must be between 0 and 1")


@dataclass(frozen=True)
class ListenConfig:
    vad_threshold: float = 0.5
    """Silero VAD speech probability that counts as speech."""
    end_of_turn: str = "smart"
    """How the end of a request is found: "smart" asks the end-of-turn model (Smart Turn)
    and the words heard so far at each short pause; "silence" waits `silence_seconds`."""
    pause_seconds: float = 0.2
    """With "smart": the pause after which the model is first asked (again each time the
    pause doubles)."""
    max_pause_seconds: float = 2.0
    """With "smart": the longest pause inside a request (the model said "not finished")."""
    silence_seconds: float = 0.7
    """Silence after speech that ends the request with "silence", or when the end-of-turn
    model is missing or fails."""
    pre_roll_seconds: float = 0.3
    """Audio kept from before speech was detected, so the first syllable is not lost."""
    max_speech_seconds: float = 15.0
    """A request is cut off after this long."""
    no_speech_timeout: float = 5.0
    """After the wake word, give up if no speech starts within this many seconds."""

    def __post_init__(self) -> None:
        _check(0.0 < self.vad_threshold < 1.0, "listen.vad_threshold must be between 0 and 1")
        _check(0.1 <= self.silence_seconds <= 5.0, "listen.silence_seconds must be 0.1–5")
        _check(
            self.end_of_turn in ("smart", "silence"),
            f"listen.end_of_turn must be smart or silence, not {self.end_of_turn!r}",
        )
        _check(0.1 <= self.pause_seconds <= 1.0, "listen.pause_seconds must be 0.1–1")
        _check(
            self.pause_seconds < self.max_pause_seconds <= 5.0,
            "listen.max_pause_seconds must be above listen.pause_seconds and at most 5",
        )
        _check(0.0 <= self.pre_roll_seconds <= 2.0, "listen.pre_roll_seconds must be 0–2")
        _check(1.0 <= self.max_speech_seconds <= 60.0, "listen.max_speech_seconds must be 1–60")
        _check(0.5 <= self.no_speech_timeout <= 30.0, "listen.no_speech_timeout must be 0.5–30")


@dataclass(frozen=True)
class FeedbackConfig:
    earcons: bool = True
    """Short sounds on wake, at the end of listening and on an error (`appliance run`
    only: a recording has nobody to hear them)."""


@dataclass(frozen=True)
class SttConfig:
    model: str = "whisper-tiny.en"
    """Catalog name of the whisper.cpp model."""
    language: str = "en"
    threads: int = 0
    """Worker threads for whisper.cpp; 0 = every core."""
    fit_context: bool = True
    """Encode only as much audio as was said instead of Whisper's fixed 30 s window:
    2–3× faster on short requests."""
    bias: bool = False
    """Bias whisper towards the house's own words (device, room and timer names and a few
    commands, given as its initial prompt). Off by default: with whisper tiny.en it halves
    the command word error rate (12 % against 22 %) but the prompt needs a 512-frame
    encoder window, which doubles the STT time of a short request, and it made more
    wrong actions on the bench (`appliance bench --only understanding`)."""
    weigh: bool = True
    """When a transcript is near a sentence of the house but not quite it, ask whisper
    which of the house's sentences the audio supports (`understanding/acoustic.py`): a
    misheard command then acts, or is asked about, or is left alone. Costs 0.1–0.5 s, on
    those turns only."""
    relisten: bool = True
    """With `weigh`: a transcript with the house's words in it that is no clear command
    is transcribed again with the house's words as whisper's prompt, and what that heard
    is weighed against the audio too. Costs one more transcription (about 1–3 s here),
    on those turns only."""

    remote: str = ""
    """A bigger box's Wyoming speech-to-text, e.g. "tcp://192.168.1.20:10300"
    (wyoming-faster-whisper, or another appliance's `serve-wyoming`); this board's whisper
    when it cannot. Empty: this board's only."""
    remote_timeout_seconds: float = 3.0
    """To connect, and the longest silence while the transcript is awaited."""
    remote_deadline_seconds: float = 15.0
    """The longest one transcription may take there."""

    def __post_init__(self) -> None:
        _check(self.threads >= 0, "stt.threads must be 0 (auto) or more")
        check_remote_timing(self, "stt")
        if self.remote:
            check_wyoming_url(self.remote, "stt.remote")


@dataclass(frozen=True)
class TtsConfig:
    voice: str = "en_US-joe-medium"
    """Catalog name of the Piper voice."""
    length_scale: float = 1.0
    """Speaking rate: above 1 is slower, below 1 faster."""
    threads: int = 0
    """ONNX threads for Piper; 0 = every core. The language model waits between tokens
    while Piper speaks a sentence, so Piper may use them all."""
    vary: bool = True
    """Piper's natural variation between two sayings of the same text; false makes
    every saying identical (what the tests and benchmarks use)."""
    first_clause_chars: int = 24
    """A language model's long first sentence is spoken from its first clause of at least
    this many characters (at a comma, or before "and it …"), not from its end; 0 = off."""

    remote: str = ""
    """A bigger box's Wyoming voice, e.g. "tcp://192.168.1.20:10200" (wyoming-piper, or
    another appliance's `serve-wyoming`); this board's Piper when it cannot. Empty:
    this board's only."""
    remote_voice: str = ""
    """The voice asked for there; empty: the service's own default."""
    remote_timeout_seconds: float = 3.0
    """To connect, and the longest silence while a sentence's audio is awaited."""
    remote_deadline_seconds: float = 15.0
    """The longest one sentence may take there."""

    def __post_init__(self) -> None:
        _check(0.3 <= self.length_scale <= 3.0, "tts.length_scale must be 0.3–3")
        _check(
            self.first_clause_chars == 0 or 12 <= self.first_clause_chars <= 200,
            "tts.first_clause_chars must be 0 (off) or 12–200",
        )
        _check(self.threads >= 0, "tts.threads must be 0 (auto) or more")
        check_remote_timing(self, "tts")
        if self.remote:
            check_wyoming_url(self.remote, "tts.remote")


@dataclass(frozen=True)
class AudioConfig:
    input_device: str = ""
    """Microphone by index or part of its name; empty = the first one found."""
    output_device: str = ""
    """Speaker by index or part of its name; empty = the first one found."""


@dataclass(frozen=True)
class AppConfig:
    models_dir: str = ""
    """Where prepared model files live; empty = $APPLIANCE_MODELS_DIR or
    ~/.local/share/appliance/models."""
    wake: WakeConfig = field(default_factory=WakeConfig)
    listen: ListenConfig = field(default_factory=ListenConfig)
    conversation: ConversationConfig = field(default_factory=ConversationConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    stt: SttConfig = field(default_factory=SttConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    """The optional camera (off by default); see docs/vision.md."""
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    """MQTT and Home Assistant discovery (`appliance run`); off while `host` is empty."""
    devices: DeviceList = field(default_factory=DeviceList)
    """`[[devices]]` tables: what the appliance can switch (see "Doing things")."""
    actions: ActionsConfig = field(default_factory=ActionsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    """The config page, its API and the mDNS advertisement (appliance/web)."""
    satellite: SatelliteConfig = field(default_factory=SatelliteConfig)
    rooms: RoomsConfig = field(default_factory=RoomsConfig)
    """Several boxes agreeing which one answers (appliance/rooms); off by default."""
    """Home Assistant's native API (appliance/satellite); off by default."""

    def __post_init__(self) -> None:
        if self.rooms.enabled and self.rooms.via == "mqtt" and not self.mqtt.host:
            raise ConfigError(
                'rooms.via = "mqtt" needs the broker: set mqtt.host (every box uses the same '
                'one), or use rooms.via = "multicast"'
            )
        pin = self.vision.button_pin
        if pin is not None:
            used = _actions_pins(self.actions, self.devices)
            if pin in used:
                raise ConfigError(
                    f"vision.button_pin {pin} is already the {used[pin]}'s pin; give the look "
                    "button a pin of its own"
                )

    def models_path(self) -> Path:
        return default_models_dir() if not self.models_dir else Path(self.models_dir).expanduser()


def gpio_pins(config: AppConfig) -> dict[int, str]:
    """The GPIO pins the devices and buttons use, and what for (not the look button,
    which is on by default wherever there is GPIO)."""
    return _actions_pins(config.actions, config.devices)


def _actions_pins(actions: ActionsConfig, devices: DeviceList) -> dict[int, str]:
    """The GPIO pins the actions use, and what for."""
    light = actions.status_light
    named = [
        (actions.button.pin, "push-to-talk button (actions.button)"),
        (actions.mute_switch.pin, "mute switch (actions.mute_switch)"),
    ]
    for pin in (light.pin, light.red, light.green, light.blue):
        named.append((pin, "status light (actions.status_light)"))
    for device in devices:
        if device.gpio is not None:
            named.append((device.gpio.pin, f'device "{device.name}"'))
    return {pin: what for pin, what in named if pin is not None}


def data_dir() -> Path:
    """The appliance's writable state (timers, queues, pairing, captures): each concern
    keeps its own file or folder here. $APPLIANCE_DATA_DIR, else
    $XDG_DATA_HOME/appliance (~/.local/share/appliance); the SD image uses /data."""
    env = os.environ.get("APPLIANCE_DATA_DIR")
    if env:
        return Path(env).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "appliance"


def default_models_dir() -> Path:
    env = os.environ.get("APPLIANCE_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    return data_dir() / "models"


def default_config_path() -> Path | None:
    """The first config file that exists: $APPLIANCE_CONFIG, the user's, the system's.
    ($APPLIANCE_CONFIG may name a file that does not exist yet: defaults are used, and
    `appliance models use` creates it.)"""
    env = os.environ.get("APPLIANCE_CONFIG")
    if env:
        return Path(env) if Path(env).is_file() else None
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    for candidate in (Path(config_home) / "appliance" / "config.toml",
                      Path("/etc/appliance/config.toml")):  # fmt: skip
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None) -> AppConfig:
    """Read and validate a TOML config; None means defaults."""
    if path is None:
        return AppConfig()
    try:
        raw = tomllib.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"config file {path} is not valid TOML ({err}); fix it or remove it to use defaults"
        ) from err
    try:
        return _build(AppConfig, raw, "")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def build_config(raw: dict[str, Any]) -> AppConfig:
    """Validate parsed TOML tables into an AppConfig (raises ConfigError)."""
    return _build(AppConfig, raw, "")


@dataclass(frozen=True)
class ConfigFallback:
    """A config file found broken at start, and what is used instead."""

    path: str
    used: str
    """backup (PATH.bak, the last good version) or defaults."""
    message: str


def load_config_or_fallback(path: Path | None) -> tuple[AppConfig, ConfigFallback | None]:
    """For the service: a half-written or invalid config must not keep the appliance
    from starting. Fall back to the backup the last save kept, else the defaults, and
    say so (the caller logs it, publishes a `config_fallback` event and the page shows a
    banner). The broken file is left in place for the user to look at or save over."""
    try:
        return load_config(path), None
    except ConfigError as err:
        if path is None or not Path(path).exists():
            raise
        problem = str(err)
    backup = Path(path).with_name(Path(path).name + ".bak")
    try:
        config = load_config(backup) if backup.is_file() else None
    except ConfigError:
        config = None
    if config is not None:
        message = f"{problem}. Using the last good version, {backup}."
        return config, ConfigFallback(str(path), "backup", message)
    message = f"{problem}. No usable backup: using the default settings."
    return AppConfig(), ConfigFallback(str(path), "defaults", message)


def config_from_args(args: Any) -> AppConfig:
    """The configuration a command runs with: --config (or the default file), and
    --models-dir on top."""
    config = load_config(args.config or default_config_path())
    if getattr(args, "models_dir", None):
        config = dataclasses.replace(config, models_dir=str(args.models_dir))
    return config


def _build(cls: type[Any], table: dict[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - names)
    where = f"[{section}] " if section else ""
    if unknown:
        raise ConfigError(f"{where}unknown setting(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in table.items():
        expected = hints[name]
        key = f"{section}.{name}" if section else name
        if dataclasses.is_dataclass(expected):
            if not isinstance(value, dict):
                raise ConfigError(f"{key} must be a [{key}] table")
            values[name] = _build(expected, value, key)
        else:
            values[name] = _coerce(value, expected, key)
    return cls(**values)


def _coerce(value: Any, expected: Any, key: str) -> Any:
    if hasattr(expected, "from_toml"):  # a setting that parses itself (e.g. [[devices]])
        return expected.from_toml(value, key)
    if isinstance(expected, types.UnionType):
        expected = next(t for t in typing.get_args(expected) if t is not type(None))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in (int, float, str, bool) and (
        not isinstance(value, expected) or (expected is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{key} must be {expected.__name__}, not {value!r}")
    return value


def user_config_path() -> Path:
    """Where `appliance models use` and the web page save settings."""
    env = os.environ.get("APPLIANCE_CONFIG")
    if env:
        return Path(env)
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "appliance" / "config.toml"


def set_config_value(path: Path, section: str, key: str, value: str | int | float | bool) -> None:
    """Change one setting in a TOML config file, validating the result before it is saved.

    The file is rewritten atomically (temp file, fsync, rename) and the previous version is
    kept as `config.toml.bak`, so a power cut leaves either the old or the new file.
    Comments in the file are not kept.
    """
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"cannot update {path}: it is not readable TOML ({err})") from err
    raw.setdefault(section, {})[key] = value
    try:
        _build(AppConfig, raw, "")
    except ConfigError as err:
        raise ConfigError(f"not saved: {err}") from None
    atomic_write(path, to_toml(raw))


def to_toml(data: dict[str, Any]) -> str:
    """TOML for our flat settings: top-level keys, then one table per section."""
    lines = [f"{k} = {toml_value(v)}" for k, v in data.items()
             if not isinstance(v, dict) and not _array_of_tables(v)]  # fmt: skip
    for name, table in data.items():
        if isinstance(table, dict):
            lines.append(f"\n[{name}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    for name, tables in data.items():  # [[devices]]
        if _array_of_tables(tables):
            for table in tables:
                lines.append(f"\n[[{name}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def _array_of_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def _escape_control(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char, f"\\u{ord(char):04x}")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # TOML allows no raw control character but tab in a basic string: escape them all.
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = _CONTROL.sub(_escape_control, escaped)
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, e.g. gpio = { pin = 17 }
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"cannot write {value!r} to TOML")


def atomic_write(path: Path, text: str, *, backup: bool = True) -> None:
    """Replace a file so that a crash leaves the old or the new content, never half;
    the old content is kept as PATH.bak (unless `backup` is False: a corrupt file must
    not overwrite the last good backup)."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if backup and path.exists():
            with open(path, "rb") as old, open(path.with_name(path.name + ".bak"), "wb") as copy:
                copy.write(old.read())
                copy.flush()
                os.fsync(copy.fileno())
        os.replace(tmp, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
