"""Settings of the web server and the mDNS advertisement (`[web]` in config.toml)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from appliance.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = True
    """Serve the config page and API inside `appliance run`."""
    host: str = "0.0.0.0"
    """Address to listen on: 0.0.0.0 = every interface (the LAN), 127.0.0.1 = this
    device only, or one interface's address."""
    port: int = 80
    """TCP port; 80 lets people type just http://NAME.local. Without the right to bind
    it (not root, no CAP_NET_BIND_SERVICE) the server says so and uses 8080."""
    device_name: str = ""
    """The name people see (mDNS instance, e.g. "kitchen" → http://kitchen.local);
    empty = the system's hostname."""
    mdns: bool = True
    """Advertise the page on the local network (_http._tcp and _voice-appliance._tcp)."""
    keep_transcripts: bool = True
    """Privacy: keep what was said and replied in the recent turns (in memory only, for
    the status page). Off: only timings and outcomes are kept."""
    pairing_code_minutes: float = 10.0
    """How long a pairing code lets a browser in after it is made (spoken at start, by
    the button, or printed by `appliance pairing new-code`)."""

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            raise ConfigError(
                f"web.host must be an IP address such as 0.0.0.0 or 127.0.0.1, not {self.host!r}"
            ) from None
        _check(1 <= self.port <= 65535, "web.port must be 1–65535")
        _check(1 <= self.pairing_code_minutes <= 1440,
               "web.pairing_code_minutes must be 1–1440 (a day)")  # fmt: skip
        _check(
            self.device_name == "" or bool(_NAME.match(self.device_name)),
            "web.device_name must be 1–63 letters, digits, spaces, dots, - or _, "
            "starting with a letter or digit",
        )


def host_label(name: str) -> str:
    """A DNS host label for a device name: "Kitchen Speaker" → "kitchen-speaker"."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return label[:63] or "appliance"
