"""The ESPHome native API server: one task per connected client (Home Assistant), each
saying Hello before anything else, then answering its requests and pushing the
entities' states as they change.

Whatever a client sends that is not the API (garbage, an oversized frame, a type no
message has, nothing at all within `hello_timeout_seconds`) is logged and its connection
closed; the appliance and the other clients go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aioesphomeapi import api_pb2
from google.protobuf.message import Message

from appliance import events as ev
from appliance.satellite.entities import Entity
from appliance.satellite.frames import Codec, FrameError, PlaintextCodec
from appliance.satellite.messages import MessageError, decode, typed
from appliance.satellite.voice import VoiceAssistant
from appliance.sections.satellite import SatelliteConfig

_LOGGER = logging.getLogger(__name__)
API_VERSION = (1, 14)
"""1.14: feature flags of our own (1.11) are read; below 1.15 Home Assistant reads the
device's capabilities from DeviceInfo, which is all this server sends."""
ESPHOME_VERSION = "2025.11.0"
"""The ESPHome release whose API this server speaks, for Home Assistant's device page."""


@dataclass(frozen=True)
class Identity:
    name: str
    """The node name: lower-case letters, digits and hyphens."""
    friendly_name: str
    mac_address: str
    version: str
    """The appliance's own version."""


class ProtocolError(Exception):
    """A client broke the API's rules (e.g. a request before Hello)."""


class SatelliteServer:
    def __init__(
        self,
        config: SatelliteConfig,
        identity: Identity,
        entities: Sequence[Entity],
        bus: ev.EventBus,
        voice: VoiceAssistant | None = None,
        *,
        key: str = "",
        problem: str = "",
    ) -> None:
        """`key`: the encryption key in base64 (appliance/satellite/keys.py); "" =
        plaintext. `problem`: why the API cannot be served (it is then not)."""
        self.config = config
        self.problem = problem
        self.voice = voice
        self.commanding: _Connection | None = None
        """The connection whose command is being applied (a media URL is fetched from
        its address)."""
        self.identity = identity
        self.entities = {entity.key: entity for entity in entities}
        self.bus = bus
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._unsubscribe = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._key: bytes | None = None
        self._advertiser: Any = None
        if key:
            from appliance.satellite.noise import decode_key

            self._key = decode_key(key)  # checked by the config or keys.py already

    @property
    def encrypted(self) -> bool:
        return self._key is not None

    def _codec(self) -> Codec:
        if self._key is None:
            return PlaintextCodec()
        from appliance.satellite.noise import NoiseCodec

        return NoiseCodec(self._key, self.identity.name, self.identity.mac_address)

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.config.port
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> SatelliteServer:
        self._loop = asyncio.get_running_loop()
        if self.problem:
            _LOGGER.error("Home Assistant's native API is not served: %s", self.problem)
            self._serving(self.problem)
            return self
        try:
            self._server = await asyncio.start_server(
                self._serve, self.config.host, self.config.port
            )
        except OSError as err:  # the appliance goes on answering; the page says why
            reason = (
                f"cannot listen on {self.config.host}:{self.config.port} "
                f"({os.strerror(err.errno) if err.errno else err}); "
                "free the port or set satellite.port"
            )
            _LOGGER.error("Home Assistant's native API is not served: %s", reason)
            self._serving(reason)
            return self
        self._unsubscribe = self.bus.subscribe(self._on_event)
        self._serving("")
        if self.config.mdns:
            await self._advertise()
        _LOGGER.info(
            "Home Assistant's native API is served on port %d (%s)",
            self.port, "encrypted" if self.encrypted else "plaintext, no encryption key",
        )  # fmt: skip
        return self

    async def _advertise(self) -> None:
        from appliance.discovery.mdns import ESPHOME_TYPE, Advertiser, Service

        advertiser = Advertiser(
            self.identity.name,
            self.port,
            hostname=self.identity.name,
            services=[Service(ESPHOME_TYPE, self.port, lambda name: self.txt())],
        )
        try:
            await advertiser.start()
        except Exception as err:  # Home Assistant can still be given the address by hand
            _LOGGER.warning("the native API could not be announced over mDNS: %s", err)
            with contextlib.suppress(Exception):
                await advertiser.close()
            return
        self._advertiser = advertiser

    def txt(self) -> dict[str, str]:
        """The TXT records Home Assistant reads from `_esphomelib._tcp`."""
        identity = self.identity
        records = {
            "friendly_name": identity.friendly_name,
            "version": ESPHOME_VERSION,
            "mac": identity.mac_address.replace(":", "").lower(),
            "platform": "linux",
            "network": "ethernet",
            "project_name": "voice-appliance.appliance",
            "project_version": identity.version,
        }
        if self.encrypted:
            records["api_encryption"] = "Noise_NNpsk0_25519_ChaChaPoly_SHA256"
        return records

    async def __aexit__(self, *exc: object) -> None:
        if self._advertiser is not None:
            with contextlib.suppress(Exception):
                await self._advertiser.close()
            self._advertiser = None
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.voice is not None:
            await self.voice.close()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)

    @property
    def serving(self) -> bool:
        return self._server is not None

    def _serving(self, error: str) -> None:
        self.bus.publish(
            ev.SatelliteServing(
                turn=0, stream_time=0.0, port=self.port, encrypted=self.encrypted, error=error
            )
        )

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, (ev.Muted, ev.StateChanged)) and self._loop is not None:
            self._loop.call_soon_threadsafe(self._push_states)

    def announce(self, connection: _Connection, *, connected: bool) -> None:
        clients = sum(c.said_hello for c in self.connections) - (0 if connected else 1)
        self.bus.publish(
            ev.SatelliteConnection(
                turn=0,
                stream_time=0.0,
                connected=connected,
                client=connection.client,
                peer=connection.peer,
                clients=max(clients, 0),
            )
        )

    def states_changed(self) -> None:
        """An entity's state changed (from any thread): sent to every subscriber."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._push_states)

    def _push_states(self) -> None:
        for connection in list(self.connections):
            connection.push_states()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        if len(self.connections) >= self.config.max_clients:
            _LOGGER.warning(
                "refused a native API client from %s: %d are connected already "
                "(satellite.max_clients)", peer, len(self.connections),
            )  # fmt: skip
            writer.close()
            return
        connection = _Connection(self, reader, writer, peer)
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    return f"{address[0]}:{address[1]}" if address else "?"


class _Connection:
    def __init__(
        self,
        server: SatelliteServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer = peer
        address = writer.get_extra_info("peername")
        self.host = str(address[0]) if address else ""
        self.client = "?"
        self.said_hello = False
        self.wants_states = False
        self._sent_states: dict[int, bytes] = {}
        """Each entity's state as last sent: only a change is sent again."""
        self._codec = server._codec()
        self._closing = False

    async def run(self) -> None:
        try:
            await asyncio.wait_for(self._hello(), self.server.config.hello_timeout_seconds)
            _LOGGER.info("native API client %r connected from %s", self.client, self.peer)
            self.server.announce(self, connected=True)
            while not self._closing:
                data = await self.reader.read(4096)
                if not data:
                    break
                self._take_in(data)
        except TimeoutError:
            _LOGGER.warning(
                "native API client %s said no Hello within %.0f s: disconnected",
                self.peer, self.server.config.hello_timeout_seconds,
            )  # fmt: skip
        except (FrameError, MessageError, ProtocolError) as err:
            _LOGGER.warning("native API client %s disconnected: %s", self.peer, err)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
            if self.server.voice is not None:
                self.server.voice.gone(self)
            if self.said_hello:
                _LOGGER.info("native API client %r from %s is gone", self.client, self.peer)
                self.server.announce(self, connected=False)

    async def _hello(self) -> None:
        while not self.said_hello:
            data = await self.reader.read(4096)
            if not data:
                raise ConnectionError("closed before Hello")
            self._take_in(data)

    def _take_in(self, data: bytes) -> None:
        try:
            messages = self._codec.feed(data)
        finally:  # a handshake's answer, or its refusal, goes out first
            if replies := self._codec.take_replies():
                self.writer.write(replies)
        for message_type, payload in messages:
            self._handle(decode(message_type, payload))

    def close(self) -> None:
        self._closing = True
        if not self.writer.is_closing():
            self.writer.close()

    def send(self, *messages: Message) -> None:
        if self.writer.is_closing():
            return
        codec = self._codec
        self.writer.write(b"".join(codec.encode(*typed(message)) for message in messages))

    def push_states(self) -> None:
        if not self.wants_states:
            return
        changed = []
        for key, entity in self.server.entities.items():
            state = entity.state()
            wire = state.SerializeToString()
            if self._sent_states.get(key) != wire:
                self._sent_states[key] = wire
                changed.append(state)
        if changed:
            self.send(*changed)

    def _handle(self, message: Message) -> None:
        if isinstance(message, api_pb2.HelloRequest):
            self._on_hello(message)
            return
        if not self.said_hello:
            raise ProtocolError(f"it sent {type(message).__name__} before Hello")
        server, identity = self.server, self.server.identity
        if isinstance(message, api_pb2.AuthenticationRequest):
            pass  # no password: the encryption key is the API's protection
        elif isinstance(message, api_pb2.DeviceInfoRequest):
            self.send(
                api_pb2.DeviceInfoResponse(
                    name=identity.name,
                    friendly_name=identity.friendly_name,
                    mac_address=identity.mac_address,
                    esphome_version=ESPHOME_VERSION,
                    model="Voice appliance",
                    manufacturer="voice-appliance",
                    project_name="voice-appliance.appliance",
                    project_version=identity.version,
                    api_encryption_supported=self.server.encrypted,
                    voice_assistant_feature_flags=server.voice.feature_flags if server.voice else 0,
                )
            )
        elif isinstance(message, api_pb2.ListEntitiesRequest):
            listings = [entity.listing() for entity in server.entities.values()]
            self.send(*listings, api_pb2.ListEntitiesDoneResponse())
        elif isinstance(message, api_pb2.SubscribeStatesRequest):
            self.wants_states = True
            self._sent_states.clear()
            self.push_states()
        elif isinstance(message, api_pb2.PingRequest):
            self.send(api_pb2.PingResponse())
        elif isinstance(message, api_pb2.DisconnectRequest):
            self.send(api_pb2.DisconnectResponse())
            self.close()
        elif hasattr(message, "key") and type(message).__name__.endswith("CommandRequest"):
            self._command(message)
        elif server.voice is not None and server.voice.handle(self, message):
            pass
        elif not isinstance(message, (api_pb2.PingResponse, api_pb2.DisconnectResponse)):
            _LOGGER.debug("native API client %s: %s is not served", self.peer,
                          type(message).__name__)  # fmt: skip

    def _on_hello(self, message: api_pb2.HelloRequest) -> None:
        if self.said_hello:
            raise ProtocolError("it said Hello twice")
        self.client = message.client_info[:64] or "?"
        self.said_hello = True
        identity = self.server.identity
        self.send(
            api_pb2.HelloResponse(
                api_version_major=API_VERSION[0],
                api_version_minor=API_VERSION[1],
                server_info=f"voice-appliance {identity.version}",
                name=identity.name,
            )
        )

    def _command(self, message: Message) -> None:
        entity = self.server.entities.get(message.key)  # type: ignore[attr-defined]
        self.server.commanding = self
        try:
            taken = entity is not None and entity.command(message)
        finally:
            self.server.commanding = None
        if not taken:
            _LOGGER.warning(
                "native API client %s: %s for key %d, which no entity of this kind has",
                self.peer, type(message).__name__, message.key,  # type: ignore[attr-defined]
            )  # fmt: skip
            return
        self.server._push_states()
