"""The `[rooms]` settings: boxes in several rooms that agree which one answers a wake word
they all heard (appliance/rooms, docs/bigger-box.md)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from appliance.errors import ConfigError


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class RoomsConfig:
    enabled: bool = False
    """Agree with the other boxes on this network which one answers a wake word several
    heard: the one that heard it best. Every box needs it on, with the same group and
    port."""
    name: str = ""
    """This box's name among them (its room); empty: `web.device_name`, else the host
    name. Each box needs its own."""
    group: str = "239.255.76.76"
    """The multicast group the boxes talk on (organisation-local; stays on this network)."""
    port: int = 10390
    window_ms: float = 150.0
    """The longest a box waits for the others' claims after its own (it decides sooner
    when every box it knows has claimed, or a better one has)."""
    interface: str = ""
    """This box's address on the network to use; empty: the system's default route."""
    via: str = "multicast"
    """How the boxes reach each other: "multicast" (`group`:`port` on this network), or
    "mqtt" (`topic` on the broker of `[mqtt]`, which every box needs), for networks that
    drop multicast."""
    topic: str = "appliance/rooms"
    """With `via = "mqtt"`: the topic the boxes share."""

    def __post_init__(self) -> None:
        try:
            group = ipaddress.IPv4Address(self.group)
        except ValueError:
            raise ConfigError(f"rooms.group must be an IPv4 multicast address such as "
                              f"239.255.76.76, not {self.group!r}") from None  # fmt: skip
        _check(group.is_multicast, f"rooms.group {self.group} is not a multicast address "
               "(224.0.0.0–239.255.255.255; 239.x is for one organisation's network)")  # fmt: skip
        _check(1024 <= self.port <= 65535, "rooms.port must be 1024–65535")
        _check(20 <= self.window_ms <= 2000, "rooms.window_ms must be 20–2000")
        _check(self.via in ("multicast", "mqtt"),
               f"rooms.via must be multicast or mqtt, not {self.via!r}")  # fmt: skip
        _check(bool(self.topic) and not any(c in self.topic for c in "#+\0"),
               f"rooms.topic must be an MQTT topic without wildcards, not "
               f"{self.topic!r}")  # fmt: skip
        if self.interface:
            try:
                ipaddress.IPv4Address(self.interface)
            except ValueError:
                raise ConfigError(f"rooms.interface must be this box's IPv4 address, not "
                                  f"{self.interface!r}") from None  # fmt: skip
