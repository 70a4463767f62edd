"""The `[satellite]` settings: Home Assistant's native API (appliance/satellite)."""

from __future__ import annotations

import binascii
import ipaddress
from dataclasses import dataclass, field

from appliance.errors import ConfigError


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class SatelliteConfig:
    enabled: bool = True
    """Serve the ESPHome native API inside `appliance run`, so that Home Assistant finds
    the appliance and adds it as a voice satellite (asking for the encryption key)."""
    mode: str = "local"
    """Who answers a spoken request: "local", the appliance itself (Home Assistant sees
    its entities and announces through it), or "home_assistant", Home Assistant's voice
    pipeline, with the appliance answering itself when Home Assistant cannot."""
    host: str = "0.0.0.0"
    """Address to listen on: 0.0.0.0 = every interface, 127.0.0.1 = this device only."""
    port: int = 6053
    """TCP port; 6053 is the one Home Assistant tries."""
    max_clients: int = 4
    """Clients connected at once; one more is refused (Home Assistant needs one)."""
    hello_timeout_seconds: float = 10.0
    """A client that has not said Hello by then is disconnected."""
    mdns: bool = True
    """Announce the API on the local network (`_esphomelib._tcp`), so that Home
    Assistant offers to add the appliance by itself."""
    encryption_key: str = field(default="", repr=False)
    """The API's encryption key: 32 random bytes in base64, which Home Assistant asks
    for when the device is added (`appliance satellite key` makes one). Empty: a key is
    made on first start and kept in the data directory (`satellite.key`); the status
    page and `appliance satellite status` show it."""
    plaintext: bool = False
    """No encryption at all, as an ESPHome device without `api: encryption:`: anyone on
    the network can then mute the appliance, play sounds on it and, in home_assistant
    mode, receive what it hears after the wake word. Only for trying things out."""

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            raise ConfigError(
                f"satellite.host must be an IP address such as 0.0.0.0 or 127.0.0.1, "
                f"not {self.host!r}"
            ) from None
        _check(
            self.mode in ("local", "home_assistant"),
            f"satellite.mode must be local or home_assistant, not {self.mode!r}",
        )
        _check(0 <= self.port <= 65535, "satellite.port must be 0–65535 (0: any free port)")
        _check(1 <= self.max_clients <= 64, "satellite.max_clients must be 1–64")
        _check(
            0.5 <= self.hello_timeout_seconds <= 120,
            "satellite.hello_timeout_seconds must be 0.5–120",
        )
        _check(
            not (self.plaintext and self.encryption_key),
            "satellite.plaintext = true and an encryption_key contradict each other: remove one",
        )
        if self.encryption_key:
            _check(
                _is_key(self.encryption_key),
                "satellite.encryption_key must be 32 bytes in base64 (44 characters); make "
                "one with `appliance satellite key`, or leave it empty for plaintext",
            )


def _is_key(key: str) -> bool:
    try:
        return len(binascii.a2b_base64(key.strip(), strict_mode=True)) == 32
    except (binascii.Error, ValueError):
        return False
