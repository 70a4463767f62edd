"""The MQTT link against a real mosquitto on loopback: Last Will, the persistent outbox
across a broker outage and a restart, credentials, TLS."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.mqtt.link import Backoff, LinkState, MqttLink
from appliance.mqtt.outbox import Outbox, OutMessage
from appliance.sections.mqtt import MqttConfig
from tests.mqtt_broker import Mosquitto, add_user, make_certificates, subscriber

BASE = "appliance/test"


def config(port: int, **overrides: object) -> MqttConfig:
    settings: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "device_name": "test",
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
        "keepalive": 5,
    }
    settings.update(overrides)
    return MqttConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture
def broker(tmp_path: Path):
    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def running(
    settings: MqttConfig, outbox_path: Path, errors: list[tuple[str, str]] | None = None
) -> AsyncIterator[MqttLink]:
    outbox = Outbox(outbox_path, settings.queue_max)
    link = MqttLink(
        settings,
        outbox,
        on_error=lambda code, message: (errors if errors is not None else []).append(
            (code, message)
        ),
    )
    task = asyncio.create_task(link.run())
    try:
        yield link
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        outbox.close()


async def until(condition, seconds: float = 10.0) -> None:  # noqa: ANN001
    """Poll a condition on state the link owns (it has no event for each of them)."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - see the docstring
            await asyncio.sleep(0.01)


def test_online_on_connect_messages_in_order_and_offline_on_a_clean_stop(broker, tmp_path):
    async def main() -> None:
        async with subscriber(broker.port, f"{BASE}/#") as (_, seen):
            async with running(config(broker.port), tmp_path / "outbox.sqlite3") as link:
                await until(lambda: link.connected)
                for i in range(20):
                    link.publish(f"{BASE}/n", str(i))
                await seen.wait_for(lambda s: len(s.on(f"{BASE}/n")) == 20)
                await until(lambda: len(link.outbox) == 0)  # removed once acknowledged
            await seen.wait_for(lambda s: s.on(f"{BASE}/availability")[-1:] == ["offline"])
        assert seen.on(f"{BASE}/n") == [str(i) for i in range(20)]
        assert seen.on(f"{BASE}/availability") == ["online", "offline"]

    asyncio.run(main())


def test_the_last_will_says_offline_when_the_appliance_vanishes(broker, tmp_path):
    """The link's connection is cut without a DISCONNECT: the broker publishes the will,
    and the link reconnects and says "online" again."""

    async def main() -> None:
        async with (
            subscriber(broker.port, f"{BASE}/availability") as (_, seen),
            running(config(broker.port), tmp_path / "o.sqlite3") as link,
        ):
            await until(lambda: link.connected)
            await seen.wait_for(lambda s: s.on(f"{BASE}/availability") == ["online"])
            client = link._client  # the paho socket, to simulate a network cut
            assert client is not None
            client._client.socket().shutdown(socket.SHUT_RDWR)
            await seen.wait_for(
                lambda s: s.on(f"{BASE}/availability") == ["online", "offline", "online"]
            )
            await until(lambda: link.connects == 2)

    asyncio.run(main())


def test_broker_down_messages_are_kept_and_delivered_in_order_when_it_returns(tmp_path):
    broker = Mosquitto(tmp_path / "broker", persistence=True).start()
    errors: list[tuple[str, str]] = []
    try:

        async def main() -> None:
            # A subscriber with a persistent session, so the broker keeps its messages.
            async with subscriber(broker.port, f"{BASE}/q", identifier="watcher",
                                  clean_session=False):  # fmt: skip
                pass
            broker.stop()
            settings = config(broker.port, queue_max=50)
            async with running(settings, tmp_path / "outbox.sqlite3", errors) as link:
                for i in range(60):  # 10 more than fit: the 10 oldest are dropped
                    link.publish(f"{BASE}/q", f"m{i}")
                async with asyncio.timeout(5):
                    await link.flushed()
                assert len(link.outbox) == 50
                assert link.outbox.counter("dropped") == 10
                await until(lambda: link.state is LinkState.RETRYING)  # the first attempt failed
                assert [code for code, _ in errors] == ["mqtt_connect"]  # one per outage
                await asyncio.sleep(0.5)  # several failed attempts: still one event
                assert len(errors) == 1
                broker.start()
                await until(lambda: link.connected)
                await until(lambda: len(link.outbox) == 0)
            async with subscriber(broker.port, identifier="watcher",
                                  clean_session=False) as (_, seen):  # fmt: skip
                await seen.wait_for(lambda s: len(s.on(f"{BASE}/q")) == 50)
                await asyncio.sleep(0.1)
            assert seen.on(f"{BASE}/q") == [f"m{i}" for i in range(10, 60)]

        asyncio.run(main())
    finally:
        broker.stop()


def test_messages_left_in_the_outbox_survive_a_restart(broker, tmp_path):
    path = tmp_path / "outbox.sqlite3"

    async def first_run() -> None:
        settings = config(free_closed_port())
        async with running(settings, path) as link:
            for i in range(5):
                link.publish(f"{BASE}/kept", f"k{i}", retain=(i == 4))
            async with asyncio.timeout(5):
                await link.flushed()

    async def second_run() -> None:
        async with (
            subscriber(broker.port, f"{BASE}/kept") as (_, seen),
            running(config(broker.port), path) as link,
        ):
            await seen.wait_for(lambda s: len(s.on(f"{BASE}/kept")) == 5)
            await until(lambda: len(link.outbox) == 0)
        assert seen.on(f"{BASE}/kept") == [f"k{i}" for i in range(5)]

    asyncio.run(first_run())
    assert len(Outbox(path, 100)) == 5
    asyncio.run(second_run())

    async def retained() -> None:  # the retain flag was stored too
        async with subscriber(broker.port, f"{BASE}/kept") as (_, seen):
            await seen.wait_for(lambda s: bool(s.messages))
        assert seen.messages == [(f"{BASE}/kept", "k4", True)]

    asyncio.run(retained())


def free_closed_port() -> int:
    from tests.mqtt_broker import free_port

    return free_port()  # nothing listens there


def test_expired_messages_are_not_sent_late(broker, tmp_path):
    async def main() -> None:
        async with subscriber(broker.port, f"{BASE}/#") as (_, seen):
            outbox = Outbox(tmp_path / "o.sqlite3", 10)
            outbox.put(
                [
                    OutMessage(f"{BASE}/late", b"stale", expires=1.0),
                    OutMessage(f"{BASE}/late", b"fresh"),
                ]
            )
            outbox.close()
            async with running(config(broker.port), tmp_path / "o.sqlite3") as link:
                await seen.wait_for(lambda s: s.on(f"{BASE}/late") == ["fresh"])
                await until(lambda: link.outbox.counter("expired") == 1)  # counted after sending
                await asyncio.sleep(0.1)
                assert seen.on(f"{BASE}/late") == ["fresh"]

    asyncio.run(main())


def test_a_wrong_password_is_reported_once_and_not_retried(tmp_path):
    passwords = add_user(tmp_path / "passwd", "jarvis", "right horse")
    broker = Mosquitto(tmp_path / "broker", password_file=passwords).start()
    errors: list[tuple[str, str]] = []
    try:

        async def main() -> None:
            wrong = config(broker.port, username="jarvis", password="wrong")
            async with running(wrong, tmp_path / "a.sqlite3", errors) as link:
                await until(lambda: link.state is LinkState.AUTH_FAILED)
                link.publish(f"{BASE}/x", "kept")  # still stored for a fixed config
                await asyncio.sleep(0.5)
                assert link.connects == 0
            assert len(errors) == 1
            code, message = errors[0]
            assert code == "mqtt_auth"
            assert "refused the credentials" in message and "Not retrying" in message
            assert len(Outbox(tmp_path / "a.sqlite3", 10)) == 1

            secret = tmp_path / "secret"
            secret.write_text("right horse\n")
            right = config(broker.port, username="jarvis", password_file=str(secret))
            async with running(right, tmp_path / "b.sqlite3") as link:
                await until(lambda: link.connected)

        asyncio.run(main())
    finally:
        broker.stop()


def test_tls_with_our_own_ca_insecure_mode_and_an_unknown_ca(tmp_path):
    tls = make_certificates(tmp_path / "pki")
    broker = Mosquitto(tmp_path / "broker", tls=tls).start()
    try:

        async def main() -> None:
            async with subscriber(broker.port, f"{BASE}/availability") as (_, seen):
                verified = config(broker.tls_port, tls=True, ca_file=str(tls.ca))
                async with running(verified, tmp_path / "1.sqlite3") as link:
                    await until(lambda: link.connected)
                await seen.wait_for(lambda s: s.on(f"{BASE}/availability")[:1] == ["online"])

                insecure = config(broker.tls_port, tls=True, tls_insecure=True)
                async with running(insecure, tmp_path / "2.sqlite3") as link:
                    await until(lambda: link.connected)

                errors: list[tuple[str, str]] = []
                unknown_ca = config(broker.tls_port, tls=True)  # the system CAs do not know it
                async with running(unknown_ca, tmp_path / "3.sqlite3", errors) as link:
                    await until(lambda: bool(errors))
                    assert not link.connected
                assert errors[0][0] == "mqtt_connect"
                assert "CERTIFICATE_VERIFY_FAILED" in errors[0][1]

        asyncio.run(main())
    finally:
        broker.stop()


def test_backoff_doubles_up_to_the_cap_with_jitter():
    backoff = Backoff(first=1.0, cap=30.0)
    rng = random.Random(1)
    delays = [backoff.delay(n, rng) for n in range(1, 10)]
    ceilings = [1, 2, 4, 8, 16, 30, 30, 30, 30]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays[5:]}) == 4  # jittered, not all equal


def test_a_corrupt_outbox_file_is_set_aside_not_fatal(tmp_path):
    path = tmp_path / "mqtt-outbox.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    outbox = Outbox(path, 10)
    outbox.put([OutMessage("a/b", b"1")])
    assert len(outbox) == 1
    assert list(tmp_path.glob("mqtt-outbox.sqlite3.corrupt-*"))
    outbox.close()
