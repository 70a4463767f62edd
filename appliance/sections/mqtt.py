"""The `[mqtt]` settings. An empty `host` (the default) leaves MQTT off."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import ConfigError

_NODE_ID = re.compile(r"[^a-zA-Z0-9_-]+")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def check_topic(topic: str, key: str, *, allow_empty: bool = False) -> None:
    """A topic we publish or subscribe to exactly: no wildcards, no empty levels at the
    ends, no NUL, at most 65535 bytes (the MQTT limit)."""
    if not topic and allow_empty:
        return
    _check(bool(topic), f"{key} must not be empty")
    _check(
        "+" not in topic and "#" not in topic,
        f"{key} = {topic!r} must not contain the wildcards + or #",
    )
    _check(
        not topic.startswith("/") and not topic.endswith("/"),
        f"{key} = {topic!r} must not start or end with /",
    )
    _check("\x00" not in topic, f"{key} must not contain a NUL character")
    _check(len(topic.encode("utf-8")) <= 65535, f"{key} is longer than MQTT allows")


def node_id(name: str) -> str:
    """A device name made safe for topic levels and Home Assistant ids."""
    return _NODE_ID.sub("_", name.strip()).strip("_").lower() or "appliance"


@dataclass(frozen=True)
class MqttConfig:
    host: str = ""
    """Broker host name or address; empty = MQTT off."""
    port: int = 0
    """Broker port; 0 = 1883, or 8883 with TLS."""
    username: str = ""
    """User name for the broker; empty = anonymous."""
    password: str = field(default="", repr=False)
    """Password for the broker (prefer `password_file`, which keeps it out of this file)."""
    password_file: str = ""
    """A file whose first line is the password."""
    tls: bool = False
    """Connect with TLS."""
    ca_file: str = ""
    """PEM file of the CA that signed the broker's certificate; empty = the system's CAs."""
    certfile: str = ""
    """Client certificate (PEM) for brokers that require one."""
    keyfile: str = ""
    """Private key of `certfile`."""
    tls_insecure: bool = False
    """Accept any broker certificate (self-signed, wrong host name). Encrypts, but does
    not prove who the broker is; prefer `ca_file`."""
    client_id: str = ""
    """MQTT client id; empty = "appliance-<device>"."""
    device_name: str = ""
    """The name Home Assistant shows; empty = this machine's host name."""
    base_topic: str = ""
    """Prefix of the appliance's own topics; empty = "appliance/<device>"."""
    discovery: bool = True
    """Announce the appliance to Home Assistant (MQTT discovery); false removes it."""
    discovery_prefix: str = "homeassistant"
    """Home Assistant's discovery prefix."""
    publish_transcripts: bool = False
    """Publish what was heard and replied. Off by default: it is private."""
    queue_max: int = 1000
    """Messages kept while the broker is unreachable; the oldest are dropped beyond it."""
    keepalive: int = 60
    """Seconds between keep-alive pings; the broker publishes the Last Will after 1.5×."""
    reconnect_min_seconds: float = 1.0
    """First wait before reconnecting; it doubles after each failure."""
    reconnect_max_seconds: float = 60.0
    """Longest wait between reconnection attempts."""

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        _check(0 <= self.port <= 65535, "mqtt.port must be 0 (default) or 1–65535")
        _check(
            not (self.password and self.password_file),
            "mqtt.password and mqtt.password_file are both set: keep one",
        )
        _check(
            not ((self.password or self.password_file) and not self.username),
            "mqtt.password is set without mqtt.username",
        )
        for key in ("password_file", "ca_file", "certfile", "keyfile"):
            value = getattr(self, key)
            _check(
                not value or Path(value).expanduser().is_file(),
                f"mqtt.{key} = {value!r} does not exist or is not a file",
            )
        _check(
            not (self.keyfile and not self.certfile),
            "mqtt.keyfile is set without mqtt.certfile",
        )
        if not self.tls:
            for key in ("ca_file", "certfile", "keyfile", "tls_insecure"):
                _check(not getattr(self, key), f"mqtt.{key} is set but mqtt.tls is false")
        _check(len(self.client_id) <= 128, "mqtt.client_id must be at most 128 characters")
        check_topic(self.base_topic, "mqtt.base_topic", allow_empty=True)
        check_topic(self.discovery_prefix, "mqtt.discovery_prefix")
        _check(1 <= self.queue_max <= 1_000_000, "mqtt.queue_max must be 1–1000000")
        _check(5 <= self.keepalive <= 3600, "mqtt.keepalive must be 5–3600 seconds")
        _check(
            0.05 <= self.reconnect_min_seconds <= self.reconnect_max_seconds <= 3600,
            "mqtt.reconnect_min_seconds must be ≥ 0.05 and ≤ reconnect_max_seconds ≤ 3600",
        )

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def name(self) -> str:
        return self.device_name or socket.gethostname() or "appliance"

    @property
    def node_id(self) -> str:
        return node_id(self.name)

    @property
    def base(self) -> str:
        return self.base_topic or f"appliance/{self.node_id}"

    @property
    def broker_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)

    @property
    def identifier(self) -> str:
        return self.client_id or f"appliance-{self.node_id}"

    def read_password(self) -> str | None:
        """The password, from the setting or the first line of `password_file`."""
        if self.password_file:
            path = Path(self.password_file).expanduser()
            try:
                lines = path.read_text("utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as err:
                raise ConfigError(f"cannot read mqtt.password_file {path}: {err}") from err
            if not lines or not lines[0]:
                raise ConfigError(f"mqtt.password_file {path} is empty")
            return lines[0]
        return self.password or None
