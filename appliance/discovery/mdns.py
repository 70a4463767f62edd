"""Advertise the config page over mDNS: `_http._tcp` (browsers, zeroconf browsers) and
`_voice-appliance._tcp` (our own type, for Home Assistant-style discovery), both with
TXT records, and the host name NAME.local. The same advertiser announces Home
Assistant's native API (`_esphomelib._tcp`) for appliance/satellite, given its service.

A name another device already uses is renamed "kitchen (2)", "kitchen (3)", …; address
or hostname changes (DHCP, a new Wi-Fi) are noticed by polling and re-announced; close()
sends the goodbye packets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata

import ifaddr
from zeroconf import DNSQuestionType, IPVersion, NonUniqueNameException, ServiceInfo
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from appliance.sections.web import host_label

_LOGGER = logging.getLogger(__name__)
HTTP_TYPE = "_http._tcp.local."
OWN_TYPE = "_voice-appliance._tcp.local."
ESPHOME_TYPE = "_esphomelib._tcp.local."
"""The ESPHome native API (appliance/satellite), as Home Assistant browses for it."""
WYOMING_TYPE = "_wyoming._tcp.local."
"""Wyoming services (`appliance serve-wyoming`), as Home Assistant browses for them."""
API_VERSION = "1"
MAX_RENAMES = 20


def app_version() -> str:
    try:
        return metadata.version("appliance")
    except metadata.PackageNotFoundError:
        return "0"


def current_addresses() -> list[str]:
    """This host's IPv4 addresses: the LAN ones, or loopback when there is nothing else
    (a network namespace in the tests)."""
    found = {ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if ip.is_IPv4}
    lan = sorted(str(ip) for ip in found if not str(ip).startswith("127."))
    return lan or sorted(str(ip) for ip in found)


@dataclass(frozen=True)
class Announced:
    name: str
    """The instance name in use (renamed on a conflict)."""
    host: str
    addresses: tuple[str, ...]
    port: int


@dataclass(frozen=True)
class Service:
    """One service announced under the advertiser's name."""

    kind: str
    port: int
    txt: Callable[[str], dict[str, str]]
    """Its TXT records, given the name announced."""


class Advertiser:
    """Announces services under one name (the config page's by default), takes another
    name when it is in use, and announces again when the network changes."""

    def __init__(self, name: str, port: int, *, path: str = "/", poll_seconds: float = 10.0,
                 hostname: str | None = None,
                 services: Sequence[Service] | None = None) -> None:  # fmt: skip
        self.wanted_name = name
        self.port = port
        self.services = list(services or [Service(OWN_TYPE, port, self._txt),
                                          Service(HTTP_TYPE, port, self._txt)])  # fmt: skip
        self.path = path
        self.poll_seconds = poll_seconds
        self._hostname = hostname
        self._base = ""
        self._zc: AsyncZeroconf | None = None
        self._infos: list[ServiceInfo] = []
        self.announced: Announced | None = None
        self._poller: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.probe_ms = 1500
        """How long to wait for another device answering for a name before taking it."""

    def _name(self) -> str:
        """The name to announce: the configured one, else the system's hostname now
        (so a hostname changed while running is followed)."""
        return self.wanted_name or socket.gethostname().split(".")[0] or "appliance"

    def _host(self) -> str:
        return host_label(self._hostname or self._name())

    def changed(self) -> bool:
        """Whether the addresses, the host name or the name differ from what is announced."""
        if self.announced is None:
            return False
        return (
            tuple(current_addresses()) != self.announced.addresses
            or f"{self._host()}.local" != self.announced.host
            or self._name() != self._base
        )

    def _txt(self, name: str) -> dict[str, str]:
        return {"version": app_version(), "name": name, "path": self.path, "api": API_VERSION}

    async def start(self) -> Announced:
        async with self._lock:
            announced = await self._register()
        self._poller = asyncio.create_task(self._poll(), name="mdns-poll")
        return announced

    async def _register(self) -> Announced:
        addresses = current_addresses()
        host = self._host()
        self._zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
        base = self._base = self._name()
        for attempt in range(1, MAX_RENAMES + 1):
            name = base if attempt == 1 else f"{base} ({attempt})"
            infos = [
                ServiceInfo(
                    service.kind, f"{name}.{service.kind}", port=service.port,
                    properties=service.txt(name), server=f"{host}.local.",
                    parsed_addresses=addresses,
                )
                for service in self.services
            ]  # fmt: skip
            if await self._answered(infos[0]):
                _LOGGER.warning("mDNS name %r is taken on this network; trying another", name)
                continue
            try:
                for info in infos:
                    # The first await probes for the name; the second waits for the
                    # announcements to be sent.
                    await (await self._zc.async_register_service(info))
            except NonUniqueNameException:
                _LOGGER.warning("mDNS name %r is taken on this network; trying another", name)
                for info in infos:
                    with contextlib.suppress(Exception):
                        await self._zc.async_unregister_service(info)
                continue
            self._infos = infos
            self.announced = Announced(name, f"{host}.local", tuple(addresses), self.port)
            _LOGGER.info("announced as %r on http://%s.local:%d (%s)", name, host, self.port,
                         ", ".join(addresses))  # fmt: skip
            return self.announced
        raise RuntimeError(f"no free mDNS name found after {MAX_RENAMES} tries")

    async def _answered(self, info: ServiceInfo) -> bool:
        """Whether another device answers for this name now. zeroconf's own probing only
        consults what its cache has heard so far, and a fresh start has heard nothing."""
        assert self._zc is not None
        other = AsyncServiceInfo(info.type, info.name)
        # Ask for multicast answers: a unicast one goes to port 5353 of the asker, which
        # another responder on the same host may hold (SO_REUSEPORT) and swallow.
        return bool(await other.async_request(self._zc.zeroconf, self.probe_ms,
                                              question_type=DNSQuestionType.QM))  # fmt: skip

    async def _unregister(self) -> None:
        if self._zc is None:
            return
        for info in self._infos:
            with contextlib.suppress(Exception):
                await (await self._zc.async_unregister_service(info))  # goodbye sent
        await self._zc.async_close()
        self._zc = None
        self._infos = []

    async def refresh(self) -> bool:
        """Re-announce when the addresses or the host name changed; True if it did."""
        async with self._lock:
            if self.announced is None:
                return False
            if not self.changed():
                return False
            _LOGGER.info("network changed: announcing again")
            await self._unregister()
            await self._register()
            return True

    def rename(self, name: str) -> None:
        """A new device name (from the settings): announced in the background."""
        self.wanted_name = name
        task = asyncio.get_running_loop().create_task(self.refresh(), name="mdns-rename")
        task.add_done_callback(_log_failure)
        self._rename_task = task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.refresh()
            except Exception as err:
                _LOGGER.warning("mDNS refresh failed: %s", err)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        async with self._lock:
            await self._unregister()


def _log_failure(task: asyncio.Task[bool]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _LOGGER.warning("mDNS re-announcement failed: %s", task.exception())
