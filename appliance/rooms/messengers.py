"""How the boxes' arbiters reach each other: UDP multicast on this network (the default),
or a topic on the MQTT broker they share, for networks that drop multicast (some mesh
Wi-Fi and guest networks do)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from appliance.mqtt.link import MqttLink

Received = Callable[[bytes, str], None]
"""A message's bytes, and who sent it (for the log)."""


class Messenger(Protocol):
    where: str
    """Where the boxes meet, for the log ("239.255.76.76:10390", "mqtt appliance/rooms")."""

    async def open(self, received: Received) -> None:
        """Start hearing the others. OSError: this box cannot reach them."""

    def send(self, data: bytes) -> bool:
        """To every box (this one may hear it back); False when it could not go now.
        Never blocks."""

    def close(self) -> None: ...


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, received: Received) -> None:
        self.received = received

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received(data, addr[0])


class Multicast:
    """One UDP multicast group, kept to this network (TTL 1)."""

    def __init__(self, group: str, port: int, interface: str = "0.0.0.0") -> None:
        self.group, self.port, self.interface = group, port, interface
        self.where = f"{group}:{port}"
        self._transport: asyncio.DatagramTransport | None = None

    async def open(self, received: Received) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("", self.port))
            membership = struct.pack("4s4s", socket.inet_aton(self.group),
                                     socket.inet_aton(self.interface))  # fmt: skip
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)  # this network
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            if self.interface != "0.0.0.0":
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                socket.inet_aton(self.interface))  # fmt: skip
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(received), sock=sock
        )

    def send(self, data: bytes) -> bool:
        if self._transport is None:
            return False
        self._transport.sendto(data, (self.group, self.port))
        return True

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class OverMqtt:
    """One topic on the broker the boxes share, through this box's MQTT link. Claims go
    at once at QoS 0, past the outbox: a claim is worth nothing a second later, so while
    the broker is away nothing is kept (and the box answers what it hears alone)."""

    def __init__(self, link: MqttLink, topic: str) -> None:
        self.link, self.topic = link, topic
        self.where = f"mqtt {topic}"
        self._remove: Callable[[], None] | None = None

    async def open(self, received: Received) -> None:
        def heard(_topic: str, data: bytes) -> None:
            received(data, "the broker")

        self._remove = self.link.subscribe(self.topic, heard)

    def send(self, data: bytes) -> bool:
        return self.link.publish_now(self.topic, data)

    def close(self) -> None:
        if self._remove is not None:
            self._remove()
