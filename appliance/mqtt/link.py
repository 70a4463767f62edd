"""One connection to the MQTT broker, kept up for as long as the appliance runs.

- Last Will: the broker publishes "offline" (retained) on `<base>/availability` when the
  appliance vanishes; "online" is published on every connect, "offline" on a clean stop.
- Reconnects with exponential backoff (doubling, capped, jittered). A broker that refuses
  the credentials is not retried: retrying cannot fix a wrong password.
- `publish` never blocks and never fails: the message goes to the persistent `Outbox` and
  a pump sends it, in order, whenever the broker is connected.
- `subscribe` registrations survive reconnects; handlers run on the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from appliance.errors import ApplianceError
from appliance.mqtt.outbox import Outbox, OutMessage, StoredMessage
from appliance.sections.mqtt import MqttConfig

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

MessageHandler = Callable[[str, bytes], None]
"""Called with (topic, payload) for every message on a subscribed topic."""
DirectPublish = Callable[[str, str | bytes, bool], Awaitable[None]]
"""(topic, payload, retain): publish at once on the live connection (QoS 1)."""
ConnectHook = Callable[[DirectPublish], Awaitable[None]]
ErrorHook = Callable[[str, str], None]
"""(code, message) when the link fails: mqtt_connect (broker unreachable, retrying) or
mqtt_auth (credentials refused, not retrying)."""

_AUTH_REFUSED = {4, 5, 134, 135}
"""CONNACK codes for bad user name/password and not authorised (MQTT 3.1.1 and 5)."""
_BATCH = 64


class LinkState(enum.Enum):
    STARTING = "starting"
    CONNECTED = "connected"
    RETRYING = "retrying"
    AUTH_FAILED = "auth_failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": half the delay fixed, half random, so a
    power cut does not make every appliance reconnect at the same instant."""

    first: float
    cap: float

    def delay(self, failures: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.first * 2 ** max(0, failures - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class MqttLink:
    def __init__(
        self,
        config: MqttConfig,
        outbox: Outbox,
        *,
        on_error: ErrorHook | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.availability_topic = f"{config.base}/availability"
        self.state = LinkState.STARTING
        self.last_error = ""
        self.connects = 0
        """Successful connections so far."""
        self._on_error = on_error
        self._rng = rng or random.Random()
        self._backoff = Backoff(config.reconnect_min_seconds, config.reconnect_max_seconds)
        self._subscriptions: dict[str, list[MessageHandler]] = {}
        self._connect_hooks: list[ConnectHook] = []
        self._pending: list[OutMessage] = []
        self._wake = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._db_thread = ThreadPoolExecutor(1, thread_name_prefix="mqtt-outbox")
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- what the rest of the appliance uses -------------------------------------------

    @property
    def connected(self) -> bool:
        return self._client is not None

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        *,
        retain: bool = False,
        qos: int = 1,
        expires_in: float | None = None,
    ) -> None:
        """Queue a message (never blocks): it is stored, then sent in order."""
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        expires = time.time() + expires_in if expires_in is not None else None
        self._pending.append(OutMessage(topic, data, qos, retain, expires))
        self._idle.clear()
        self._wake.set()

    def publish_now(self, topic: str, payload: bytes) -> bool:
        """Send at once, at QoS 0, past the outbox: for messages worth nothing later (a
        room's claim on a wake word). False, and nothing kept, while disconnected."""
        client = self._client
        if client is None:
            return False
        self._spawn(client.publish(topic, payload, qos=0), f"publish {topic}", "dropped")
        return True

    def subscribe(self, topic: str, handler: MessageHandler) -> Callable[[], None]:
        """Call `handler` for each message on `topic` (wildcards allowed), now and after
        every reconnect. Returns a function that removes it."""
        handlers = self._subscriptions.setdefault(topic, [])
        handlers.append(handler)
        if self._client is not None and len(handlers) == 1:
            self._spawn(self._client.subscribe(topic, qos=1), f"subscribe {topic}")

        def remove() -> None:
            with contextlib.suppress(ValueError):
                handlers.remove(handler)
            if not handlers and self._subscriptions.get(topic) is handlers:
                del self._subscriptions[topic]
                if self._client is not None:
                    self._spawn(self._client.unsubscribe(topic), f"unsubscribe {topic}")

        return remove

    def on_connect(self, hook: ConnectHook) -> None:
        """Run `hook` after every (re)connect, before queued messages are sent; it gets a
        function that publishes directly (Home Assistant discovery uses it)."""
        self._connect_hooks.append(hook)

    async def flushed(self) -> None:
        """Wait until every queued message has been stored and, when connected, sent
        (wrap it in `asyncio.timeout`)."""
        await self._idle.wait()

    # ---- the connection loop -------------------------------------------------------------

    async def run(self) -> None:
        """Connect and stay connected until cancelled. Publishes "offline" on the way out."""
        pump = asyncio.create_task(self._pump(), name="mqtt-outbox-pump")
        failures = 0
        try:
            while True:
                try:
                    await self._session()
                    failures = 0  # a clean end of session: the broker closed it
                except MqttConnectError as err:
                    if is_auth_refusal(err):
                        self._fail(
                            LinkState.AUTH_FAILED,
                            "mqtt_auth",
                            f"the MQTT broker {self._where()} refused the credentials ({err}); "
                            "check mqtt.username and the password, then restart. Not retrying.",
                        )
                        await asyncio.Event().wait()  # keep storing messages until stopped
                    failures += 1
                    self._retrying(failures, err)
                except (aiomqtt.MqttError, OSError, ApplianceError) as err:
                    # A session that was up and dropped starts a new outage: short wait.
                    failures = 1 if self.state is LinkState.CONNECTED else failures + 1
                    self._retrying(failures, err)
                delay = self._backoff.delay(failures, self._rng)
                _LOGGER.info("MQTT: reconnecting in %.1f s", delay)
                await asyncio.sleep(delay)
        finally:
            self.state = LinkState.STOPPED
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            for task in list(self._tasks):
                task.cancel()
            self._db_thread.shutdown(wait=True)

    def _where(self) -> str:
        return f"{self.config.host}:{self.config.broker_port}"

    def _retrying(self, failures: int, err: BaseException) -> None:
        message = (
            f"cannot reach the MQTT broker {self._where()} ({str(err) or type(err).__name__}); "
            "retrying. Messages are kept until it is back."
        )
        if failures == 1:  # one event per outage, not one per attempt
            self._fail(LinkState.RETRYING, "mqtt_connect", message)
        else:
            self.state = LinkState.RETRYING
            _LOGGER.info("MQTT: %s (attempt %d)", message, failures)

    def _fail(self, state: LinkState, code: str, message: str) -> None:
        self.state = state
        self.last_error = message
        _LOGGER.error("MQTT: %s", message)
        if self._on_error is not None:
            self._on_error(code, message)

    async def _session(self) -> None:
        client = await connect_client(
            self.config,
            will=aiomqtt.Will(self.availability_topic, b"offline", qos=1, retain=True),
        )
        async with client:
            try:
                await client.publish(self.availability_topic, b"online", qos=1, retain=True)
                for topic in list(self._subscriptions):
                    await client.subscribe(topic, qos=1)
                for hook in self._connect_hooks:
                    await hook(_direct(client))
                self._client = client
                self.state = LinkState.CONNECTED
                self.connects += 1
                _LOGGER.warning("MQTT: connected to %s as %s", self._where(), client.identifier)
                self._wake.set()
                async for message in client.messages:
                    self._dispatch(str(message.topic), message.payload)
            except asyncio.CancelledError:
                self._client = None
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    await client.publish(
                        self.availability_topic, b"offline", qos=1, retain=True, timeout=2
                    )
                raise
            finally:
                self._client = None

    def _dispatch(self, topic: str, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else str(payload or "").encode("utf-8")
        for pattern, handlers in list(self._subscriptions.items()):
            if aiomqtt.Topic(topic).matches(pattern):
                for handler in list(handlers):
                    try:
                        handler(topic, data)
                    except Exception:
                        _LOGGER.exception("MQTT handler for %s failed", topic)

    # ---- the outbox pump -----------------------------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, fn, *args)

    async def _pump(self) -> None:
        """Store queued messages, then send stored ones oldest first while connected; a
        message leaves the outbox only after the broker acknowledged it."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._store_pending()
            while (client := self._client) is not None:
                batch = await self._db(self.outbox.peek, _BATCH)
                if not batch:
                    break
                sent = await self._send(client, batch)
                await self._db(self.outbox.remove, sent)
                await self._store_pending()
                if len(sent) < len(batch):
                    break  # the connection dropped: the rest waits for the next one
            if not self._pending and not self._wake.is_set():
                self._idle.set()

    async def _store_pending(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            await self._db(self.outbox.put, batch)

    async def _send(self, client: aiomqtt.Client, batch: list[StoredMessage]) -> list[int]:
        done: list[int] = []
        expired = 0
        now = time.time()
        for stored in batch:
            message = stored.message
            if message.expires is not None and message.expires < now:
                expired += 1
                done.append(stored.id)
                continue
            try:
                await client.publish(
                    message.topic, message.payload, qos=message.qos, retain=message.retain
                )
            except aiomqtt.MqttError as err:
                _LOGGER.info("MQTT: send interrupted (%s); kept for the next connection", err)
                break
            done.append(stored.id)
        if expired:
            _LOGGER.warning("MQTT: dropped %d queued message(s) that expired", expired)
            await self._db(self.outbox.count_expired, expired)
        return done

    def _spawn(
        self, coro: Awaitable[Any], what: str, then: str = "redone on the next connect"
    ) -> None:
        async def guarded() -> None:
            try:
                await coro
            except aiomqtt.MqttError as err:
                _LOGGER.info("MQTT: %s failed (%s); %s", what, err, then)

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def connect_client(
    config: MqttConfig, *, will: aiomqtt.Will | None = None, suffix: str = ""
) -> aiomqtt.Client:
    """A client for the configured broker (not yet connected: `async with` it)."""
    tls = await asyncio.to_thread(tls_context, config) if config.tls else None
    return aiomqtt.Client(
        config.host,
        config.broker_port,
        username=config.username or None,
        password=config.read_password(),
        identifier=config.identifier + suffix,
        will=will,
        keepalive=config.keepalive,
        tls_context=tls,
        tls_insecure=True if config.tls_insecure else None,
        timeout=10,
    )


def tls_context(config: MqttConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=config.ca_file or None)
    if config.certfile:
        context.load_cert_chain(config.certfile, config.keyfile or None)
    if config.tls_insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def is_auth_refusal(err: BaseException) -> bool:
    return isinstance(err, MqttConnectError) and _rc(err) in _AUTH_REFUSED


def _rc(err: aiomqtt.MqttCodeError) -> int | None:
    rc = err.rc
    return rc.value if hasattr(rc, "value") else rc  # type: ignore[union-attr]


def _direct(client: aiomqtt.Client) -> DirectPublish:
    async def publish(topic: str, payload: str | bytes, retain: bool) -> None:
        await client.publish(topic, payload, qos=1, retain=retain)

    return publish
