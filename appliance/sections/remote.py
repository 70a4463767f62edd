"""Checks shared by the stages that may have a remote engine (`[llm]`, `[stt]`, `[tts]`
`remote = …`, docs/bigger-box.md)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from appliance.errors import ConfigError


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def check_http_url(url: str, key: str, *, example: str) -> None:
    """An http:// or https:// address with a host, else a ConfigError naming `key`."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is no number
    except ValueError:
        raise ConfigError(f"{key} has a port that is not a number: {url!r}") from None
    _check(
        parts.scheme in ("http", "https") and bool(parts.hostname),
        f"{key} must be an http:// or https:// address such as {example}, not {url!r}",
    )


def check_wyoming_url(url: str, key: str) -> None:
    """tcp://HOST:PORT, else a ConfigError naming `key`."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    _check(
        parts.scheme == "tcp" and bool(parts.hostname) and bool(port),
        f"{key} must be a Wyoming address such as tcp://192.168.1.20:10300, not {url!r}",
    )


def check_remote_timing(section: Any, name: str) -> None:
    """`remote_timeout_seconds` and `remote_deadline_seconds` of a stage's section."""
    _check(0.2 <= section.remote_timeout_seconds <= 60,
           f"{name}.remote_timeout_seconds must be 0.2–60")  # fmt: skip
    _check(1 <= section.remote_deadline_seconds <= 600,
           f"{name}.remote_deadline_seconds must be 1–600")  # fmt: skip
