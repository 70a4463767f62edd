"""Settings as frozen dataclasses, read from a TOML file and validated at the edge.

Every field has a default, so an empty (or missing) file is a working configuration.
Unknown keys and wrong types are reported with the file, the section and the key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError

DEFAULT_SYSTEM_PROMPT = (
    "You are Jarvis, a helpful voice assistant running offline on a small device. "
    "Reply in one short sentence."
)


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
    silence_seconds: float = 0.7
    """Silence after speech that ends the request."""
    pre_roll_seconds: float = 0.3
    """Audio kept from before speech was detected, so the first syllable is not lost."""
    max_speech_seconds: float = 15.0
    """A request is cut off after this long."""
    no_speech_timeout: float = 5.0
    """After the wake word, give up if no speech starts within this many seconds."""

    def __post_init__(self) -> None:
        _check(0.0 < self.vad_threshold < 1.0, "listen.vad_threshold must be between 0 and 1")
        _check(0.1 <= self.silence_seconds <= 5.0, "listen.silence_seconds must be 0.1–5")
        _check(0.0 <= self.pre_roll_seconds <= 2.0, "listen.pre_roll_seconds must be 0–2")
        _check(1.0 <= self.max_speech_seconds <= 60.0, "listen.max_speech_seconds must be 1–60")
        _check(0.5 <= self.no_speech_timeout <= 30.0, "listen.no_speech_timeout must be 0.5–30")


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

    def __post_init__(self) -> None:
        _check(self.threads >= 0, "stt.threads must be 0 (auto) or more")


@dataclass(frozen=True)
class LlmConfig:
    model: str = "smollm2-135m-instruct"
    """Catalog name of the GGUF language model."""
    threads: int = 0
    """Worker threads for llama.cpp; 0 = every core."""
    context: int = 2048
    """Context window in tokens (the KV cache grows with it)."""
    max_tokens: int = 128
    """Longest reply, in tokens."""
    temperature: float = 0.0
    """0 = always the most likely word (repeatable answers)."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT

    def __post_init__(self) -> None:
        _check(self.threads >= 0, "llm.threads must be 0 (auto) or more")
        _check(256 <= self.context <= 131072, "llm.context must be 256–131072 tokens")
        _check(1 <= self.max_tokens <= 4096, "llm.max_tokens must be 1–4096")
        _check(0.0 <= self.temperature <= 2.0, "llm.temperature must be 0–2")


@dataclass(frozen=True)
class TtsConfig:
    voice: str = "en_US-joe-medium"
    """Catalog name of the Piper voice."""
    length_scale: float = 1.0
    """Speaking rate: above 1 is slower, below 1 faster."""
    threads: int = 1
    """ONNX threads for Piper; 0 = every core."""

    def __post_init__(self) -> None:
        _check(0.3 <= self.length_scale <= 3.0, "tts.length_scale must be 0.3–3")
        _check(self.threads >= 0, "tts.threads must be 0 (auto) or more")


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
    stt: SttConfig = field(default_factory=SttConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)

    def models_path(self) -> Path:
        return default_models_dir() if not self.models_dir else Path(self.models_dir).expanduser()


def default_models_dir() -> Path:
    env = os.environ.get("APPLIANCE_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "appliance" / "models"


def default_config_path() -> Path | None:
    """The first config file that exists: $APPLIANCE_CONFIG, the user's, the system's."""
    env = os.environ.get("APPLIANCE_CONFIG")
    if env:
        return Path(env)
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
    if isinstance(expected, types.UnionType):
        expected = next(t for t in typing.get_args(expected) if t is not type(None))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in (int, float, str, bool) and (
        not isinstance(value, expected) or (expected is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{key} must be {expected.__name__}, not {value!r}")
    return value
